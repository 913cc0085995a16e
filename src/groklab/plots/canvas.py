"""Figures made without pyplot: no global backend is chosen and no figure is kept alive by pyplot, so a
notebook's own plotting is left alone and a returned Figure is the caller's to show or save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """`plt.subplots`, on a free-standing Figure (constrained layout unless told otherwise)."""
    kwargs.setdefault("constrained_layout", True)
    fig = Figure(figsize=figsize, constrained_layout=kwargs.pop("constrained_layout"))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write `fig` to `path`, folders made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path
