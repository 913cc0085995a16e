"""Liu et al.'s phase diagram: one coloured cell per grid point, its phase the one most seeds are in (the
figure of `groklab phase-diagram`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from groklab.analysis.phases import PHASES
from groklab.plots.canvas import subplots
from groklab.plots.run_figure import save_figure

COLORS = {"comprehension": "#4daf4a", "grokking": "#ff7f00", "memorization": "#377eb8", "confusion": "#999999"}


def plot_phase_diagram(
    axes: list[str], xs: list[Any], ys: list[Any], table: dict[tuple[Any, Any], str], output: str | Path, note: str = ""
) -> Path:
    """`table`: (x, y) -> phase; cells without a finished run stay blank."""
    grid = [[PHASES.index(table[(x, y)]) if (x, y) in table else float("nan") for x in xs] for y in ys]
    fig, ax = subplots(figsize=(1.0 + 0.9 * len(xs) + 2.5, 1.2 + 0.6 * len(ys)), constrained_layout=True)
    ax.imshow(grid, origin="lower", cmap=ListedColormap([COLORS[p] for p in PHASES]), vmin=-0.5, vmax=len(PHASES) - 0.5, aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{x:g}" if isinstance(x, float) else str(x) for x in xs], rotation=45, fontsize=8)
    ax.set_yticks(range(len(ys)), [f"{y:g}" if isinstance(y, float) else str(y) for y in ys], fontsize=8)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"phases of learning{': ' + note if note else ''}", fontsize=9)
    ax.legend(handles=[Patch(color=COLORS[p], label=p) for p in PHASES], bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    return save_figure(fig, Path(output))
