"""The standard grokking figure of one run: accuracy and loss on a log-step axis, weight norm, MED,
with t_fit and t_grok marked, and the test loss's double descent (its minima and peak), if any."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from groklab.errors import GroklabError
from groklab.plots.canvas import FORMATS, figure_file, save_figure, subplots
from groklab.store import Store

__all__ = ["FORMATS", "draw_run", "figure_path", "plot_run", "save_figure"]


def _log_x(steps: list[int]) -> list[float]:
    # Step 0 cannot sit on a log axis; draw it at 0.5 so the initial point stays visible.
    return [s if s > 0 else 0.5 for s in steps]


def figure_path(output: str | Path | None, default: Path) -> Path:
    """Where a figure goes: `output` if given (its format checked), else `default`."""
    return figure_file(output) if output else figure_file(default, user_given=False)


def plot_run(store: Store, run_id: str, output: str | Path | None = None) -> Path:
    """Draw the figure and return its path (default: the run's folder, figure.png)."""
    path = figure_path(output, store.run_dir(run_id) / "figure.png")
    return save_figure(draw_run(store, run_id), path)


def draw_run(store: Store, run_id: str) -> Figure:
    """The standard figure of one run, as a matplotlib Figure (nothing written)."""
    rec = store.get(run_id)
    m = store.metrics(run_id)
    if "train_acc" not in m:
        raise GroklabError(f"run {run_id} has no evaluations yet; nothing to plot")
    events = store.events(run_id) or _live_events(store, run_id)
    panels = [("accuracy", ["train_acc", "test_acc"]), ("loss", ["train_loss", "test_loss"])]
    panels += [(name, [name]) for name in ("weight_norm", "med") if name in m]
    fig, axes = subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), constrained_layout=True)
    colors = {"train_acc": "tab:blue", "test_acc": "tab:red", "train_loss": "tab:blue", "test_loss": "tab:red"}
    for ax, (title, names) in zip(axes, panels, strict=True):
        for name in names:
            steps, values = m[name]
            ax.plot(
                _log_x(steps), values, label=name.split("_")[0] if len(names) > 1 else name, color=colors.get(name, "tab:green"), lw=1.5
            )
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(title)
        if title == "loss":
            ax.set_yscale("log")
            _mark_double_descent(ax, events)
        if title == "accuracy":
            ax.set_ylim(-0.02, 1.02)
        for ev, style in (("t_fit", ":"), ("t_grok", "--")):
            step = events.get(ev, (None, None))[0]
            if step:
                ax.axvline(step, color="0.35", ls=style, lw=1, label=f"{ev} = {step}")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=7, loc="best")
    cfg = rec.config
    task = cfg.get("task", {})
    subtitle = " ".join(f"{k}={task[k]}" for k in ("op", "p", "train_frac", "split") if k in task)
    wd = (cfg.get("optim") or {}).get("weight_decay", "?")  # a damaged run's config is empty
    fig.suptitle(f"{rec.name} [{rec.id}] — {rec.preset}  {subtitle}  wd={wd}  ({rec.status})", fontsize=9)
    return fig


def _mark_double_descent(ax: Axes, events: dict[str, tuple[int | None, float | None]]) -> None:
    """The test loss's double descent, if the run has one: hollow markers on the curve at its two minima (▽, one
    legend entry) and its peak (△)."""
    points = {name: events.get(name, (None, None)) for name in ("dd_first_min", "dd_peak", "dd_second_min")}
    if any(s is None or v is None or v <= 0 for s, v in points.values()):
        return
    (s1, v1), (sp, vp), (s2, v2) = points.values()
    style = {"ls": "none", "ms": 7, "mfc": "none", "mec": "black", "mew": 1.2, "zorder": 5}
    ax.plot(_log_x([s1, s2]), [v1, v2], marker="v", label=f"dd minima @ {s1}, {s2}", **style)
    ax.plot(_log_x([sp]), [vp], marker="^", label=f"dd peak @ {sp}", **style)


def _live_events(store: Store, run_id: str) -> dict[str, tuple[int | None, float | None]]:
    from groklab.analysis.run_events import run_events

    return run_events(store, run_id)
