"""Fit the pattern-learning model (see `groklab.analysis.patterns`) to a run's train and test accuracy.

The fit is least squares over the evaluations where both curves are finite, each evaluation counting once
and the two curves equally (runs with more than 250 evaluations are fitted on every k-th one; the reported
RMSE uses all). n patterns have 4n free parameters (gamma, alpha, b, g; kappa stays 1 since one run says
nothing about capacity). Steps are rescaled to [0, 1] by the run's last step T; the parameters are
reported in steps. The optimiser works on an unconstrained reparametrisation:

- gamma = sigmoid(z_gamma), g = sigmoid(z_g): probabilities stay in (0, 1);
- log(b / T) = a sigmoid of z_b onto [log 1e-9, log 10]: runs span 10^2 to 4*10^5 steps and are evaluated
  on log-spaced steps, so the midpoint is searched in log-steps (the scale of the plots); a pattern the
  run never learns parks beyond its end (up to 10 T) instead of drifting off to infinity;
- alpha = k / b with the sharpness k = exp(z_k) (smoothly capped at 1000): alpha * b is scale-free, so the
  same step sizes suit a pattern learned at step 300 and one learned at step 3*10^5.

Least squares on sums of sigmoids has many local minima, so the fit is multistart and deterministic: the
starting midpoints are increasing n-tuples of a few candidate steps (log-spaced over the run, plus the steps
where each curve first reaches half its maximum; a seeded subset when there are too many), each with two
guesses of the g's and a small seeded jitter. All starts take a few Levenberg-Marquardt steps together (a
batched Gauss-Newton with damping; Jacobians by forward differences in float64), the best few then run to
convergence, and the lowest loss wins. Levenberg-Marquardt converges in tens of iterations where Adam needs
hundreds, and staying off torch.optim spares the seconds its first use spends importing TorchDynamo.

The preferred pattern has no parameter: `preferred=None` fits without one, an index k makes the k-th
pattern of every start (starts order patterns by midpoint) preferred, and "auto" (the default) gives half
the starts no preferred pattern and half the last one, and keeps whichever fits better. The result lists
the patterns sorted by b, with `preferred` indexing that order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from groklab.analysis.patterns import DTYPE, Pattern, PatternModel, acc_train, probs, subset_generalisation, subset_probs
from groklab.errors import ConfigError, GroklabError

PARAMS_PER_PATTERN = 4  # gamma, alpha, b, g
POINTS_PER_PARAM = 3  # the fewest evaluations per fitted parameter
MAX_FIT_PATTERNS = 6
MAX_STARTS = 48
SCREEN_STEPS = 12  # Levenberg-Marquardt steps for every start
KEEP = 6  # starts that then run to convergence
LM_STEPS = 150
MAX_FIT_POINTS = 250
# Bounds of the reparametrisation (b in units of the run's length T; sharpness = alpha * b). A pattern due
# after 10 T is simply not learned in the run; one before 1e-9 T was there from the start; a sharpness
# of 1000 is a step between any two evaluations.
LOG_B_MIN, LOG_B_MAX = math.log(1e-9), math.log(10.0)
LOG_K_MAX = math.log(1000.0)


@dataclass(frozen=True)
class PatternFit:
    """The fitted patterns (sorted by b, in steps), the preferred one (0-based, or None), the fit error."""

    patterns: tuple[Pattern, ...]
    preferred: int | None
    rmse_train: float
    rmse_test: float
    n_points: int
    chance: float = 0.0

    @property
    def model(self) -> PatternModel:
        return PatternModel(self.patterns, self.preferred, self.chance)

    @property
    def n_params(self) -> int:
        return PARAMS_PER_PATTERN * len(self.patterns)

    def as_dict(self) -> dict[str, Any]:
        """Plain data; `preferred` is the 1-based pattern number, as the CLI shows it."""
        return {
            "patterns": [p.as_dict() for p in self.patterns],
            "preferred": None if self.preferred is None else self.preferred + 1,
            "rmse_train": self.rmse_train,
            "rmse_test": self.rmse_test,
            "n_points": self.n_points,
            "n_params": self.n_params,
        }


def min_points(n_patterns: int) -> int:
    return POINTS_PER_PARAM * PARAMS_PER_PATTERN * n_patterns


def fit_patterns(
    steps: Sequence[float],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    n_patterns: int = 2,
    preferred: int | Literal["auto"] | None = "auto",
    seed: int = 0,
    chance: float = 0.0,
) -> PatternFit:
    """Least-squares fit of `n_patterns` patterns to two accuracy curves sampled at the same `steps`."""
    if isinstance(n_patterns, bool) or not isinstance(n_patterns, int) or not 1 <= n_patterns <= MAX_FIT_PATTERNS:
        raise ConfigError("n_patterns", f"must be an integer in 1..{MAX_FIT_PATTERNS}, got {n_patterns!r}")
    n = n_patterns
    if preferred != "auto" and preferred is not None and (isinstance(preferred, bool) or not 0 <= preferred < n):
        raise ConfigError("preferred", f"must be 'auto', None or a pattern index 0..{n - 1}, got {preferred!r}")
    if not len(steps) == len(train_acc) == len(test_acc):
        raise GroklabError(f"steps, train and test accuracy differ in length ({len(steps)}, {len(train_acc)}, {len(test_acc)})")
    t, y_train, y_test = (torch.as_tensor([float(v) for v in x], dtype=DTYPE) for x in (steps, train_acc, test_acc))
    keep = torch.isfinite(t) & torch.isfinite(y_train) & torch.isfinite(y_test) & (t >= 0)
    t, y_train, y_test = t[keep], y_train[keep], y_test[keep]
    order = torch.argsort(t)
    t, y_train, y_test = t[order], y_train[order], y_test[order]
    need = min_points(n)
    if len(t) < need:
        raise GroklabError(
            f"too few evaluations to fit {n} pattern(s): {len(t)} with finite train and test accuracy, "
            f"need at least {need} ({POINTS_PER_PARAM} per fitted parameter, {PARAMS_PER_PATTERN * n} parameters)"
        )
    T = float(t[-1])
    if T <= 0:
        raise GroklabError("the evaluations span no steps (the last one is step 0)")
    s = t / T  # steps rescaled to [0, 1]

    if len(s) > MAX_FIT_POINTS:  # every k-th evaluation: the same weighting along the run, bounded cost
        pick = torch.linspace(0, len(s) - 1, MAX_FIT_POINTS, dtype=DTYPE).round().long().unique()
        s_fit, tr_fit, te_fit = s[pick], y_train[pick], y_test[pick]
    else:
        s_fit, tr_fit, te_fit = s, y_train, y_test
    zb, is_pref, _ = _search(s_fit, tr_fit, te_fit, n, preferred, seed, chance)
    gamma, alpha_s, b_s, g = _unpack(zb, n)
    k_pref = n - 1 if is_pref else None  # the preferred rule always sits in the last slot of a start
    order_b = sorted(range(n), key=lambda i: float(b_s[i]))
    patterns = tuple(
        Pattern(
            gamma=float(gamma[i]),
            alpha=float(alpha_s[i]) / T,
            b=float(b_s[i]) * T,
            g=float(g[i]),
        )
        for i in order_b
    )
    pref_sorted = None if k_pref is None else order_b.index(k_pref)
    model = PatternModel(patterns, pref_sorted, chance)
    rmse_train = float(torch.sqrt(torch.mean((model.train_acc(t) - y_train) ** 2)))
    rmse_test = float(torch.sqrt(torch.mean((model.test_acc(t) - y_test) ** 2)))
    return PatternFit(patterns, pref_sorted, rmse_train, rmse_test, len(t), chance)


def fit_run(store: Any, run_id: str, n_patterns: int = 2, preferred: int | Literal["auto"] | None = "auto", seed: int = 0) -> PatternFit:
    """Fit a stored run's train_acc and test_acc curves (the steps where both were evaluated)."""
    steps, train, test = run_curves(store, run_id)
    return fit_patterns(steps, train, test, n_patterns, preferred, seed)


def run_curves(store: Any, run_id: str) -> tuple[list[int], list[float], list[float]]:
    """The steps at which a run logged both accuracies, and the two curves there."""
    m = store.metrics(run_id, ["train_acc", "test_acc"])
    missing = [name for name in ("train_acc", "test_acc") if name not in m]
    if missing:
        raise GroklabError(f"run {run_id} has no {' or '.join(missing)} curve; nothing to fit")
    test = dict(zip(*m["test_acc"], strict=True))
    steps = [s for s in m["train_acc"][0] if s in test]
    train = dict(zip(*m["train_acc"], strict=True))
    return steps, [train[s] for s in steps], [test[s] for s in steps]


# ----- internals --------------------------------------------------------------------------------------


def _unpack(z: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 4n) unconstrained -> gamma, alpha (per rescaled step), b (rescaled), g, each (..., n)."""
    zg, zk, zb, zq = z[..., :n], z[..., n : 2 * n], z[..., 2 * n : 3 * n], z[..., 3 * n :]
    b = torch.exp(LOG_B_MIN + (LOG_B_MAX - LOG_B_MIN) * torch.sigmoid(zb))
    sharpness = torch.exp(LOG_K_MAX - torch.nn.functional.softplus(LOG_K_MAX - zk))
    return torch.sigmoid(zg), sharpness / b, b, torch.sigmoid(zq)


def _residuals(
    z: torch.Tensor, pref: torch.Tensor, s: torch.Tensor, y_train: torch.Tensor, y_test: torch.Tensor, n: int, chance: float
) -> torch.Tensor:
    """Residuals (predicted - measured) of a batch of starts z (S, 4n): the train curve, then the test
    curve, shape (S, 2T). Where `pref` (S,) is true, the start's last pattern is preferred."""
    gamma, alpha, b, g = _unpack(z, n)
    p = probs(s, gamma, alpha, b)  # (S, T, n)
    G = torch.where(pref.unsqueeze(-1), subset_generalisation(g, n - 1, chance), subset_generalisation(g, None, chance))
    pred_test = (subset_probs(p) * G.unsqueeze(-2)).sum(-1)
    return torch.cat([acc_train(p) - y_train, pred_test - y_test], dim=-1)


def _levenberg_marquardt(
    z: torch.Tensor,
    pref: torch.Tensor,
    s: torch.Tensor,
    y_train: torch.Tensor,
    y_test: torch.Tensor,
    n: int,
    chance: float,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`iterations` Levenberg-Marquardt steps on every start at once; returns the points (S, 4n) and the
    costs (S,), the sum of squared residuals.

    The Jacobian is taken by forward differences in float64, all starts and all parameter offsets in one
    batched evaluation, which on a CPU is several times faster than autodiff Jacobians here (P = 4n is
    small, the curves are long)."""
    S, P = z.shape
    h = 1e-7
    eye = torch.eye(P, dtype=z.dtype)
    pref_fd = pref.repeat_interleave(P + 1)

    def cost_of(r: torch.Tensor) -> torch.Tensor:
        c = (r**2).sum(-1)
        return torch.where(torch.isfinite(c), c, torch.full_like(c, math.inf))

    def res_and_jac(zz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pts = torch.cat([zz.unsqueeze(1), zz.unsqueeze(1) + h * eye], dim=1).reshape(S * (P + 1), P)
        rr = _residuals(pts, pref_fd, s, y_train, y_test, n, chance).reshape(S, P + 1, -1)
        J = ((rr[:, 1:] - rr[:, :1]) / h).transpose(-1, -2)  # (S, 2T, P)
        return rr[:, 0], torch.where(torch.isfinite(J), J, torch.zeros_like(J))

    r, J = res_and_jac(z)
    cost = cost_of(r)
    lam = torch.full_like(cost, 1e-2)
    done = torch.zeros_like(cost, dtype=torch.bool)
    for _ in range(iterations):
        JtJ = J.transpose(-1, -2) @ J
        grad = (J.transpose(-1, -2) @ torch.nan_to_num(r).unsqueeze(-1)).squeeze(-1)
        damp = lam[:, None, None] * (JtJ * eye + 1e-9 * eye)  # Marquardt: scaled by the curvature's diagonal
        step = torch.linalg.solve(JtJ + damp, -grad.unsqueeze(-1)).squeeze(-1)
        step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
        r_new, J_new = res_and_jac(z + step)
        cost_new = cost_of(r_new)
        better = (cost_new < cost) & ~done
        done |= better & (cost - cost_new <= 1e-10 * cost)
        z = torch.where(better[:, None], z + step, z)
        r = torch.where(better[:, None], r_new, r)
        J = torch.where(better[:, None, None], J_new, J)
        cost = torch.where(better, cost_new, cost)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-12, 1e12)
        done |= lam >= 1e12
        if bool(done.all()):
            break
    return z, cost


def _half_step(s: torch.Tensor, y: torch.Tensor) -> float | None:
    """The first rescaled step at which a curve reaches half its maximum (if it ever rises)."""
    top = float(y.max())
    if top - float(y[0]) < 0.05:
        return None
    hit = (y >= 0.5 * (float(y[0]) + top)).nonzero()
    return float(s[hit[0, 0]]) if len(hit) else None


def _search(
    s: torch.Tensor, y_train: torch.Tensor, y_test: torch.Tensor, n: int, preferred: int | str | None, seed: int, chance: float
) -> tuple[torch.Tensor, bool, float]:
    """The best start after Levenberg-Marquardt: its point (4n,), whether it uses the preferred rule, its cost.

    Unless a preferred index is fixed, the starts also include the best (n-1)-pattern fit plus one new
    pattern at each candidate midpoint, so a fit with more patterns is never worse than one with fewer
    (the new pattern can stay unused)."""
    cands = _candidates(s, y_train, y_test, n)
    z0, pref_mask = _starts(cands, n, preferred, seed)
    if n > 1 and (preferred is None or preferred == "auto"):
        z_prev, pref_prev, _ = _search(s, y_train, y_test, n - 1, preferred, seed, chance)
        zw = _grow(z_prev, n - 1, cands)
        z0 = torch.cat([z0, zw])
        pref_mask = torch.cat([pref_mask, torch.full((len(zw),), pref_prev)])
    z, cost = _levenberg_marquardt(z0, pref_mask, s, y_train, y_test, n, chance, SCREEN_STEPS)
    top = torch.argsort(cost)[:KEEP]  # the most promising starts go on to convergence
    z, cost = _levenberg_marquardt(z[top], pref_mask[top], s, y_train, y_test, n, chance, LM_STEPS)
    i = int(torch.argmin(cost))
    return z[i], bool(pref_mask[top][i]), float(cost[i])


def _candidates(s: torch.Tensor, y_train: torch.Tensor, y_test: torch.Tensor, n: int) -> list[float]:
    """Candidate midpoints (rescaled steps): n + 3 log-spaced over the run and where each curve half rises."""
    positive = s[s > 0]
    lo = max(float(positive[0]), 1e-9) if len(positive) else 1e-3
    grid = torch.logspace(math.log10(lo), 0.0, n + 5, dtype=DTYPE)[1:-1].tolist()
    data = [h for h in (_half_step(s, y_train), _half_step(s, y_test)) if h is not None and h > 0]
    return sorted(set(grid) | set(data))


def _logit(q: float) -> float:
    return math.log(q / (1 - q))


def _z_b(b: float) -> float:
    """The inverse of the midpoint's reparametrisation (b rescaled to the run's length)."""
    u = (math.log(b) - LOG_B_MIN) / (LOG_B_MAX - LOG_B_MIN)
    return _logit(min(max(u, 1e-3), 1 - 1e-3))  # a candidate outside the bounds starts at the nearest one


# z_k for alpha * b = 6 to start (the rise spans about a factor of 3 in steps): the inverse of the cap
SHARPNESS0 = LOG_K_MAX - math.log(math.expm1(LOG_K_MAX - math.log(6.0)))


def _starts(cands: list[float], n: int, preferred: int | str | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic starting points (S, 4n) and which of them use the preferred rule (S,)."""
    combos = list(itertools.combinations(cands, n))
    gen = torch.Generator().manual_seed(seed)
    g_guesses = [[0.5] * n, [0.1] * (n - 1) + [0.9]]
    modes = [preferred is not None] if preferred != "auto" else [False, True] if n > 1 else [False]  # 1 pattern: rule is moot
    per_mode = max(1, MAX_STARTS // (len(g_guesses) * len(modes)))
    if len(combos) > per_mode:  # a spread-out, seeded subset of the midpoint tuples
        pick = torch.randperm(len(combos), generator=gen)[:per_mode].sort().values.tolist()
        combos = [combos[i] for i in pick]
    rows, mask = [], []
    for pref in modes:
        for bs in combos:
            for gs in g_guesses:
                rows.append([_logit(0.9)] * n + [SHARPNESS0] * n + [_z_b(b) for b in bs] + [_logit(q) for q in gs])
                mask.append(pref)
    z = torch.tensor(rows, dtype=DTYPE)
    z = z + 0.05 * torch.randn(z.shape, generator=gen, dtype=DTYPE)
    pref_mask = torch.tensor(mask)
    if preferred not in ("auto", None):  # a fixed preferred index: move it to the last slot of every start
        assert isinstance(preferred, int)
        if preferred != n - 1:
            perm = list(range(n))
            perm[preferred], perm[n - 1] = perm[n - 1], perm[preferred]
            idx = torch.tensor([blk * n + i for blk in range(PARAMS_PER_PATTERN) for i in perm])
            z = z[:, idx]
    return z, pref_mask


def _grow(z_prev: torch.Tensor, n_prev: int, cands: list[float]) -> torch.Tensor:
    """Starts for n_prev + 1 patterns: the previous fit with a weak new pattern in the first slot (the
    preferred rule's last slot keeps its pattern) at each candidate midpoint, generalising or not."""
    blocks = z_prev.reshape(PARAMS_PER_PATTERN, n_prev)
    rows = []
    for b in cands:
        for q in (0.1, 0.9):
            new = torch.tensor([_logit(0.2), SHARPNESS0, _z_b(b), _logit(q)], dtype=DTYPE)
            rows.append(torch.cat([new.unsqueeze(-1), blocks], dim=-1).reshape(-1))
    return torch.stack(rows)


__all__ = ["PatternFit", "fit_patterns", "fit_run", "min_points", "run_curves"]
