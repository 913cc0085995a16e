"""Davies et al.'s pattern-learning model of grokking and double descent (arXiv 2303.06173, Eqs. 1-2).

A network is pictured as learning a few *patterns*, each a way of classifying training points. Pattern i
classifies a training point correctly with probability

    p_i(t) = gamma_i / (1 + exp(-alpha_i (t - b_i)))

(gamma_i its best predictiveness, alpha_i its learning speed, b_i the step at which it is half learned),
and generalises to a test point with probability g_i. A training point is classified correctly if any
pattern gets it right, so

    train_acc(t) = 1 - prod_i (1 - p_i(t)).

Which patterns cover a point is random: the set A of patterns that have learned it has probability
P_A = prod_{i in A} p_i prod_{j not in A} (1 - p_j), and the test accuracy is the exact sum over all 2^n
subsets,

    test_acc(t) = sum_A P_A G(A),   G(A) = mean_{i in A} g_i,

except that when the *preferred* pattern k is in A it wins outright: G(A) = g_k. The paper leaves G(empty)
undefined; here it is `chance` (default 0: with no pattern the model is taken to be wrong).

Model size enters through a clock: a larger model learns every pattern faster, so at capacity c pattern i
sits where it would be at step c**kappa_i * t (kappa_i = 1 by default; a larger kappa makes a pattern,
e.g. a memorising one, depend more strongly on capacity). With every kappa = 1 the model-wise curve at a
fixed step t is the epoch-wise curve read at c * t, which is the paper's point that delayed generalisation
shows up both over training time and over model size.

Everything is computed in float64 torch tensors (torch is groklab's only array library); the functions on
raw parameter tensors broadcast over leading batch dimensions, so `pattern_fit` can refine many starting
points at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from groklab.errors import ConfigError

MAX_PATTERNS = 12  # exact test accuracy enumerates 2**n subsets: 4096 at most
DTYPE = torch.float64

TimeLike = float | int | Sequence[float] | torch.Tensor


def check_pattern_values(where: str, gamma: float, alpha: float, b: float, g: float, kappa: float = 1.0) -> None:
    """Raise ConfigError naming `where <field>` if a pattern's parameters are out of range."""
    for name, v in (("gamma", gamma), ("alpha", alpha), ("b", b), ("g", g), ("kappa", kappa)):
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise ConfigError(f"{where} {name}", f"must be a finite number, got {v!r}")
    for name, v in (("gamma", gamma), ("g", g)):
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{where} {name}", f"must be in [0, 1] (a probability), got {v:g}")
    if alpha <= 0:
        raise ConfigError(f"{where} alpha", f"must be > 0 (the learning speed), got {alpha:g}")
    if kappa < 0:
        raise ConfigError(f"{where} kappa", f"must be >= 0 (a larger model never learns a pattern slower), got {kappa:g}")


@dataclass(frozen=True)
class Pattern:
    """One pattern: max predictiveness `gamma`, speed `alpha` (1/steps), midpoint `b` (steps),
    generalisation `g`, and the capacity exponent `kappa` of its clock (see the module docstring)."""

    gamma: float
    alpha: float
    b: float
    g: float
    kappa: float = 1.0

    def __post_init__(self) -> None:
        check_pattern_values("pattern", self.gamma, self.alpha, self.b, self.g, self.kappa)

    def as_dict(self) -> dict[str, float]:
        return {"gamma": self.gamma, "alpha": self.alpha, "b": self.b, "g": self.g, "kappa": self.kappa}


# ----- the model on raw tensors (batched; used by PatternModel and by the fit) ------------------------


def as_time(t: TimeLike) -> torch.Tensor:
    """Steps as a float64 tensor (a scalar stays 0-d)."""
    return torch.as_tensor(t, dtype=DTYPE)


def probs(t: torch.Tensor, gamma: torch.Tensor, alpha: torch.Tensor, b: torch.Tensor, clock: torch.Tensor | float = 1.0) -> torch.Tensor:
    """p_i(clock_i * t) for parameters of shape (..., n) and steps of shape (T,): shape (..., T, n).

    torch.sigmoid is stable for any argument, so huge alpha * (t - b) saturates to exactly 0 or gamma."""
    clock = torch.as_tensor(clock, dtype=t.dtype)
    u = (t.unsqueeze(-1) * clock.unsqueeze(-2) if clock.dim() else t.unsqueeze(-1) * clock) - b.unsqueeze(-2)
    return gamma.unsqueeze(-2) * torch.sigmoid(alpha.unsqueeze(-2) * u)


def acc_train(p: torch.Tensor) -> torch.Tensor:
    """1 - prod_i (1 - p_i) over the last dimension."""
    return 1.0 - torch.prod(1.0 - p, dim=-1)


def subset_masks(n: int, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """(2**n, n) 0/1 matrix: row A has a 1 in column i iff bit i of A is set (row 0 is the empty set)."""
    a = torch.arange(2**n).unsqueeze(-1)
    return ((a >> torch.arange(n)) & 1).to(dtype)


def subset_probs(p: torch.Tensor) -> torch.Tensor:
    """P_A for every subset A, in `subset_masks` order: shape (..., 2**n) from p of shape (..., n).

    Built by doubling (each pattern splits every subset so far into 'without i' and 'with i'), which
    costs 2**n products instead of n * 2**n."""
    out = torch.ones((*p.shape[:-1], 1), dtype=p.dtype, device=p.device)
    for i in range(p.shape[-1]):
        pi = p[..., i : i + 1]
        out = torch.cat([out * (1.0 - pi), out * pi], dim=-1)
    return out


def subset_generalisation(g: torch.Tensor, preferred: int | None, chance: float | torch.Tensor = 0.0) -> torch.Tensor:
    """G(A) for every subset: the mean g over A, g_k if the preferred k is in A, `chance` for the empty set.

    g has shape (..., n); the result (..., 2**n)."""
    n = g.shape[-1]
    masks = subset_masks(n, g.dtype).to(g.device)
    size = masks.sum(-1)
    total = g @ masks.T
    G = total / size.clamp(min=1.0)
    G = torch.where(size == 0, torch.as_tensor(chance, dtype=g.dtype), G)
    if preferred is not None:
        G = torch.where(masks[:, preferred] == 1, g[..., preferred : preferred + 1], G)
    return G


def acc_test(p: torch.Tensor, g: torch.Tensor, preferred: int | None, chance: float | torch.Tensor = 0.0) -> torch.Tensor:
    """sum_A P_A G(A): p of shape (..., T, n), g of shape (..., n); result (..., T)."""
    G = subset_generalisation(g, preferred, chance)
    return (subset_probs(p) * G.unsqueeze(-2)).sum(-1)


# ----- the model as an object -------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternModel:
    """A set of patterns, an optional preferred one (a 0-based index into `patterns`) and G(empty).

    Calls take steps `t` (a number, a list or a tensor) and return float64 tensors of its shape;
    `capacity` (> 0) speeds every pattern's clock by capacity**kappa_i."""

    patterns: tuple[Pattern, ...]
    preferred: int | None = None
    chance: float = 0.0
    _params: dict[str, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patterns", tuple(self.patterns))
        n = len(self.patterns)
        if n == 0:
            raise ConfigError("patterns", "give at least one pattern")
        if n > MAX_PATTERNS:
            raise ConfigError("patterns", f"at most {MAX_PATTERNS} (the exact test accuracy sums over all 2^n subsets), got {n}")
        if not all(isinstance(p, Pattern) for p in self.patterns):
            raise ConfigError("patterns", "every item must be a Pattern")
        if self.preferred is not None and (isinstance(self.preferred, bool) or not 0 <= self.preferred < n):
            raise ConfigError("preferred", f"must be a pattern index 0..{n - 1} or None, got {self.preferred!r}")
        if not (isinstance(self.chance, int | float) and 0.0 <= self.chance <= 1.0):
            raise ConfigError("chance", f"G(empty set) must be in [0, 1], got {self.chance!r}")
        params = {k: torch.tensor([getattr(p, k) for p in self.patterns], dtype=DTYPE) for k in ("gamma", "alpha", "b", "g", "kappa")}
        object.__setattr__(self, "_params", params)

    def _clock(self, capacity: float) -> torch.Tensor:
        if not (isinstance(capacity, int | float) and capacity > 0 and math.isfinite(capacity)):
            raise ConfigError("capacity", f"must be a finite number > 0, got {capacity!r}")
        return float(capacity) ** self._params["kappa"]

    def _flat_probs(self, t: torch.Tensor, capacity: float) -> torch.Tensor:
        q = self._params
        return probs(t.reshape(-1), q["gamma"], q["alpha"], q["b"], self._clock(capacity))

    def probs(self, t: TimeLike, capacity: float = 1.0) -> torch.Tensor:
        """p_i at each step: shape (*t.shape, n)."""
        tt = as_time(t)
        return self._flat_probs(tt, capacity).reshape(*tt.shape, len(self.patterns))

    def train_acc(self, t: TimeLike, capacity: float = 1.0) -> torch.Tensor:
        tt = as_time(t)
        return acc_train(self._flat_probs(tt, capacity)).reshape(tt.shape)

    def test_acc(self, t: TimeLike, capacity: float = 1.0) -> torch.Tensor:
        tt = as_time(t)
        return acc_test(self._flat_probs(tt, capacity), self._params["g"], self.preferred, self.chance).reshape(tt.shape)


def accuracy_vs_capacity(model: PatternModel, capacities: Sequence[float], t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test accuracy at step `t` for each capacity: the model-wise picture (two tensors)."""
    train = torch.stack([model.train_acc(t, c) for c in capacities]) if len(capacities) else torch.zeros(0, dtype=DTYPE)
    test = torch.stack([model.test_acc(t, c) for c in capacities]) if len(capacities) else torch.zeros(0, dtype=DTYPE)
    return train, test


# ----- the paper's two cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A named model and how many steps to draw it for."""

    name: str
    model: PatternModel
    steps: int
    description: str


def _notebook(gamma1: float, gamma3: float) -> PatternModel:
    return PatternModel(
        (
            Pattern(gamma1, 0.15, 30, 1.0),  # type 1: fast heuristic that generalises
            Pattern(1.0, 0.15, 50, 0.0),  # type 2: overfitting (memorising), does not generalise
            Pattern(gamma3, 0.05, 200, 1.0),  # type 3: slow, generalises, preferred
        ),
        preferred=2,
    )


PRESETS: dict[str, Case] = {
    "double-descent": Case(
        "double-descent", _notebook(0.7, 0.2), 300, "Davies et al. notebook: heuristic, memorising, slow preferred pattern"
    ),
    "grokking": Case("grokking", _notebook(0.0, 1.0), 300, "the same with gamma1 = 0 and gamma3 = 1"),
}


# ----- key numbers of a curve -------------------------------------------------------------------------


def curve_features(x: Sequence[float], train: Sequence[float], test: Sequence[float], tol: float = 0.01) -> dict[str, object]:
    """The numbers that tell double descent from grokking on a curve sampled at increasing x (steps or
    capacities):

    - `train_90`: first x with train accuracy >= 0.9 (None if never);
    - `peak`: the first local maximum of test accuracy that it later falls from by more than `tol`,
      as (x, test_acc), None if test accuracy never falls that much;
    - `dip`: the minimum of test accuracy after the peak, (x, test_acc), None without a peak;
    - `rise`: the first x after the dip (after the start without one) at which test accuracy has climbed
      half-way from its lowest value there to its final value, None if it never climbs by more than `tol`.
    """
    xs, tr, te = list(map(float, x)), list(map(float, train)), list(map(float, test))
    out: dict[str, object] = {"train_90": next((xi for xi, v in zip(xs, tr, strict=True) if v >= 0.9), None)}
    peak = dip = None
    best = 0
    for i in range(1, len(te)):
        if te[i] > te[best]:
            best = i
        elif te[best] - te[i] > tol:
            lo = min(range(best, len(te)), key=lambda j: te[j])
            peak, dip = (xs[best], te[best]), (xs[lo], te[lo])
            break
    out["peak"], out["dip"] = peak, dip
    start = 0 if dip is None else xs.index(dip[0])
    low = min(te[start:]) if te else 0.0
    low_at = te.index(low, start) if te else 0
    rise = None
    if te and te[-1] - low > tol:
        half = low + 0.5 * (te[-1] - low)
        rise = next((xs[i] for i in range(low_at, len(te)) if te[i] >= half), None)
    out["rise"] = rise
    return out
