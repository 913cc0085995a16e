"""`groklab patterns`: Davies et al.'s pattern-learning model, its two paper cases, the model-wise picture,
and a fit of the model to a stored run."""

from __future__ import annotations

import argparse
import math
from typing import Any

from groklab.cli.common import dumps_json
from groklab.errors import ConfigError, GroklabError

PATTERNS_EXAMPLES = """examples:
  groklab patterns                                     both paper cases (double descent, grokking) -> patterns.png
  groklab patterns --case grokking --capacity log:0.1:10:41      plus accuracy against capacity at the last step
  groklab patterns --pattern gamma=1,alpha=0.1,b=50,g=0 --pattern gamma=1,alpha=0.02,b=400,g=1 --preferred 2
  groklab patterns --fit RUN --n-patterns 3           fit 3 patterns to a stored run's train/test accuracy

a pattern: gamma (max predictiveness, [0,1]), alpha (speed, > 0), b (midpoint step), g (generalisation,
[0,1]), kappa (optional capacity exponent, default 1): p(t) = gamma / (1 + exp(-alpha (t - b)))."""

PATTERN_KEYS = ("gamma", "alpha", "b", "g", "kappa")
MAX_STEPS = 10_000_000
MAX_CAPACITIES = 1000
DEFAULT_OUT = "patterns.png"


def add_patterns_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "patterns",
        help="the pattern-learning model of grokking and double descent: paper cases, custom patterns, capacity, fit to a run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=PATTERNS_EXAMPLES,
    )
    p.add_argument("--case", choices=("double-descent", "grokking", "both"), default=None, help="paper case(s) to draw (default both)")
    p.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="gamma=G,alpha=A,b=B,g=G[,kappa=K]",
        help="a custom pattern (repeat for more); replaces the paper cases",
    )
    p.add_argument(
        "--preferred",
        default=None,
        metavar="N|none|auto",
        help="the preferred pattern, 1-based (custom patterns: default none; --fit: default auto = try none and the last)",
    )
    p.add_argument("--chance", type=float, default=0.0, help="custom patterns: test accuracy when no pattern applies, G(empty) (default 0)")
    p.add_argument(
        "--steps", type=int, default=None, help="steps to draw (default: 300 for the paper cases; custom patterns: until all are learned)"
    )
    p.add_argument(
        "--capacity",
        default=None,
        metavar="VALUES",
        help="also draw accuracy at the last step against capacity c (clock c^kappa): a list 0.5,1,2 or log:0.1:10:41",
    )
    p.add_argument("--fit", default=None, metavar="RUN", help="fit the model to a stored run's train and test accuracy")
    p.add_argument("--n-patterns", type=int, default=2, metavar="K", help="--fit: the number of patterns (default 2; 3 for double descent)")
    p.add_argument(
        "-o",
        "--out",
        "--output",
        dest="out",
        default=None,
        help=f"the figure, .png/.svg/.pdf (default ./{DEFAULT_OUT}; with --fit, patterns_fit.png in the run's folder)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--runs-dir", default=None, help="the runs directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def cmd_patterns(ns: argparse.Namespace) -> int:
    from groklab.plots.canvas import figure_file

    if ns.out is not None:
        figure_file(ns.out, "--out")  # a known format, in a folder that exists: checked before anything is computed
    if ns.fit is not None:
        return _cmd_fit(ns)
    if ns.runs_dir is not None or ns.n_patterns != 2:
        raise GroklabError("--runs-dir and --n-patterns go with --fit RUN")
    return _cmd_model(ns)


# ----- the model --------------------------------------------------------------------------------------


def _cmd_model(ns: argparse.Namespace) -> int:
    from groklab.analysis.patterns import PRESETS, PatternModel, accuracy_vs_capacity, curve_features
    from groklab.plots.patterns_figure import plot_cases, time_grid

    if ns.steps is not None and not 1 <= ns.steps <= MAX_STEPS:
        raise ConfigError("--steps", f"must be in 1..{MAX_STEPS}, got {ns.steps}")
    capacities = parse_capacities(ns.capacity) if ns.capacity is not None else None
    cases: list[tuple[str, PatternModel, int]] = []
    if ns.pattern:
        if ns.case is not None:
            raise GroklabError("--case and --pattern exclude each other: --pattern draws your own patterns instead of the paper's")
        patterns = [parse_pattern(text, i + 1) for i, text in enumerate(ns.pattern)]
        preferred = parse_preferred(ns.preferred, len(patterns), allow_auto=False)
        if not (math.isfinite(ns.chance) and 0.0 <= ns.chance <= 1.0):
            raise ConfigError("--chance", f"must be in [0, 1], got {ns.chance:g}")
        model = PatternModel(tuple(patterns), preferred, ns.chance)
        cases.append(("custom", model, ns.steps or default_steps(model)))
    else:
        if ns.preferred is not None or ns.chance != 0.0:
            raise GroklabError("--preferred and --chance go with --pattern (the paper cases fix their own) or --fit")
        names = ["double-descent", "grokking"] if ns.case in (None, "both") else [ns.case]
        cases = [(name, PRESETS[name].model, ns.steps or PRESETS[name].steps) for name in names]

    rows = []
    for name, model, steps in cases:
        t = time_grid(steps)
        train, test = model.train_acc(t), model.test_acc(t)
        row: dict[str, Any] = {
            "case": name,
            "steps": steps,
            "patterns": [p.as_dict() for p in model.patterns],
            "preferred": None if model.preferred is None else model.preferred + 1,
            "chance": model.chance,
            "final_train": float(train[-1]),
            "final_test": float(test[-1]),
            **_features(curve_features(t.tolist(), train.tolist(), test.tolist()), "step"),
        }
        if capacities is not None:
            c_train, c_test = accuracy_vs_capacity(model, capacities, steps)
            cs = sorted(capacities)
            order = sorted(range(len(capacities)), key=lambda i: capacities[i])
            tr, te = [float(c_train[i]) for i in order], [float(c_test[i]) for i in order]
            row["capacity"] = {
                "at_step": steps,
                "capacities": cs,
                "train": tr,
                "test": te,
                **_features(curve_features(cs, tr, te), "capacity"),
            }
        rows.append(row)
    figure = str(plot_cases(cases, ns.out or DEFAULT_OUT, capacities))
    if ns.json:
        print(dumps_json({"cases": rows, "figure": figure}))
        return 0
    for row in rows:
        _print_case(row)
    print(f"figure: {figure}")
    return 0


def _features(f: dict[str, Any], unit: str) -> dict[str, Any]:
    """curve_features as JSON-friendly data: (x, value) pairs become {unit: x, "test_acc": value}."""
    out: dict[str, Any] = {"train_90": f["train_90"], "rise": f["rise"]}
    for key in ("peak", "dip"):
        out[key] = None if f[key] is None else {unit: f[key][0], "test_acc": f[key][1]}
    return out


def _x(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{unit} {round(v)}" if unit == "step" else f"c={v:.3g}"


def _describe(f: dict[str, Any], unit: str) -> str:
    peak, dip = f["peak"], f["dip"]
    parts = [f"train >= 0.9 at {_x(f['train_90'], unit)}"]
    if peak is None:
        parts.append("test never dips")
    else:
        parts.append(f"test peaks {peak['test_acc']:.3f} at {_x(peak[unit], unit)}, dips to {dip['test_acc']:.3f} at {_x(dip[unit], unit)}")
    parts.append(f"test rises (half-way to final) at {_x(f['rise'], unit)}")
    return "; ".join(parts)


def _print_case(row: dict[str, Any]) -> None:
    pref = "none" if row["preferred"] is None else f"pattern {row['preferred']}"
    print(f"{row['case']}: {row['steps']} steps, preferred {pref}, G(empty) = {row['chance']:g}")
    _print_patterns(row["patterns"], row["preferred"])
    print(f"  final train {row['final_train']:.3f}  test {row['final_test']:.3f}")
    print(f"  {_describe(row, 'step')}")
    if "capacity" in row:
        cap = row["capacity"]
        cs = cap["capacities"]
        print(f"  model-wise at step {cap['at_step']}, c = {cs[0]:.3g}..{cs[-1]:.3g}: {_describe(cap, 'capacity')}")


def _print_patterns(patterns: list[dict[str, float]], preferred: int | None, kappa: bool = True) -> None:
    head = f"  {'pattern':8s}  {'gamma':>7s}  {'alpha':>10s}  {'b':>10s}  {'g':>6s}" + (f"  {'kappa':>6s}" if kappa else "")
    print(head)
    for i, p in enumerate(patterns, 1):
        mark = "*" if preferred == i else ""
        line = f"  {str(i) + mark:8s}  {p['gamma']:7.3f}  {p['alpha']:10.4g}  {p['b']:10.4g}  {p['g']:6.3f}"
        print(line + (f"  {p['kappa']:6.3g}" if kappa else ""))


# ----- the fit ----------------------------------------------------------------------------------------


def _cmd_fit(ns: argparse.Namespace) -> int:
    from groklab.analysis.pattern_fit import MAX_FIT_PATTERNS, fit_patterns, run_curves
    from groklab.plots.patterns_figure import plot_fit
    from groklab.store import Store

    if ns.pattern or ns.case is not None or ns.capacity is not None or ns.steps is not None or ns.chance != 0.0:
        raise GroklabError("--fit RUN takes only --n-patterns, --preferred, --runs-dir, -o and --json")
    if not 1 <= ns.n_patterns <= MAX_FIT_PATTERNS:
        raise ConfigError("--n-patterns", f"must be in 1..{MAX_FIT_PATTERNS}, got {ns.n_patterns}")
    preferred = parse_preferred(ns.preferred, ns.n_patterns, allow_auto=True)
    store = Store(ns.runs_dir, create=False)
    rec = store.get(ns.fit)
    steps, train, test = run_curves(store, rec.id)
    fit = fit_patterns(steps, train, test, ns.n_patterns, preferred)
    out = ns.out or store.run_dir(rec.id) / "patterns_fit.png"
    title = f"run {rec.id} ({rec.preset}): {ns.n_patterns}-pattern fit"
    figure = str(plot_fit(steps, train, test, fit, out, title))
    data = {"run": rec.id, "n_patterns": ns.n_patterns, **fit.as_dict(), "first_step": steps[0], "last_step": steps[-1], "figure": figure}
    if ns.json:
        print(dumps_json(data))
        return 0
    pref = "none" if data["preferred"] is None else f"pattern {data['preferred']}"
    print(
        f"run {rec.id}: {ns.n_patterns} pattern(s) fitted to {fit.n_points} evaluations (steps {steps[0]}..{steps[-1]}), preferred {pref}"
    )
    _print_patterns(data["patterns"], data["preferred"], kappa=False)
    print(f"  rmse train {fit.rmse_train:.4f}  test {fit.rmse_test:.4f}")
    print(f"figure: {figure}")
    return 0


# ----- parsing ----------------------------------------------------------------------------------------


def parse_pattern(text: str, number: int) -> Any:
    """`gamma=0.7,alpha=0.15,b=30,g=1[,kappa=2]` -> a Pattern; errors name `--pattern N <key>`."""
    from groklab.analysis.patterns import Pattern, check_pattern_values

    where = f"--pattern {number}"
    values: dict[str, float] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(where, f"expected gamma=..,alpha=..,b=..,g=..[,kappa=..], got {text!r}")
        if key not in PATTERN_KEYS:
            raise ConfigError(where, f"unknown key {key!r}; the keys are {', '.join(PATTERN_KEYS)}")
        if key in values:
            raise ConfigError(where, f"{key} given twice")
        try:
            values[key] = float(raw)
        except ValueError:
            raise ConfigError(f"{where} {key}", f"not a number: {raw.strip()!r}") from None
    missing = [k for k in PATTERN_KEYS[:4] if k not in values]
    if missing:
        raise ConfigError(where, f"missing {', '.join(missing)} (give gamma, alpha, b and g; kappa is optional)")
    values.setdefault("kappa", 1.0)
    check_pattern_values(where, values["gamma"], values["alpha"], values["b"], values["g"], values["kappa"])
    return Pattern(values["gamma"], values["alpha"], values["b"], values["g"], values["kappa"])


def parse_preferred(text: str | None, n: int, allow_auto: bool) -> int | str | None:
    """--preferred (1-based) -> a 0-based index, None or "auto" (the default where allowed)."""
    if text is None:
        return "auto" if allow_auto else None
    t = text.strip().lower()
    if t == "none":
        return None
    if t == "auto":
        if not allow_auto:
            raise ConfigError("--preferred", "auto only goes with --fit; give a pattern number 1..N or none")
        return "auto"
    if not (t.isascii() and t.isdigit()) or not 1 <= int(t) <= n:
        raise ConfigError("--preferred", f"must be a pattern number 1..{n}, none{' or auto' if allow_auto else ''}, got {text!r}")
    return int(t) - 1


def parse_capacities(text: str) -> list[float]:
    """`log:START:STOP:COUNT` (log-spaced, inclusive) or a list `0.5,1,2`; every capacity > 0."""
    t = text.strip()
    if t.startswith("log:"):
        parts = t[4:].split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ConfigError("--capacity", f"log range {text!r} must look like log:START:STOP:COUNT, e.g. log:0.1:10:41") from None
        if not (start > 0 and stop > 0 and math.isfinite(start) and math.isfinite(stop)) or not 1 <= count <= MAX_CAPACITIES:
            raise ConfigError("--capacity", f"log range {text!r} needs START, STOP > 0 and COUNT in 1..{MAX_CAPACITIES}")
        if count == 1:
            return [start]
        lo, hi = math.log10(start), math.log10(stop)
        return [10 ** (lo + (hi - lo) * i / (count - 1)) for i in range(count)]
    out = []
    for item in t.split(","):
        try:
            c = float(item)
        except ValueError:
            raise ConfigError("--capacity", f"not a number: {item.strip()!r} (give a list 0.5,1,2 or log:0.1:10:41)") from None
        if not (c > 0 and math.isfinite(c)):
            raise ConfigError("--capacity", f"capacities must be finite and > 0, got {item.strip()}")
        out.append(c)
    if len(out) > MAX_CAPACITIES:
        raise ConfigError("--capacity", f"at most {MAX_CAPACITIES} values, got {len(out)}")
    return out


def default_steps(model: Any) -> int:
    """Long enough to see every pattern learned (each within e^-6 of its gamma) and at least 300."""
    return max(300, min(MAX_STEPS, math.ceil(max(p.b + 6.0 / p.alpha for p in model.patterns))))
