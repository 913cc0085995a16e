"""Figures made without pyplot: no global backend is chosen and no figure is kept alive by pyplot, so a
notebook's own plotting is left alone and a returned Figure is the caller's to show or save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from groklab.errors import GroklabError
from groklab.store.outputs import atomic_path, output_file

FORMATS = (".png", ".svg", ".pdf")


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """`plt.subplots`, on a free-standing Figure (constrained layout unless told otherwise)."""
    kwargs.setdefault("constrained_layout", True)
    fig = Figure(figsize=figsize, constrained_layout=kwargs.pop("constrained_layout"))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def figure_file(output: str | Path, flag: str = "--output", user_given: bool = True) -> Path:
    """A figure's path, checked before anything is drawn: a known format and, for a path the user gave, a folder
    that exists (groklab makes only its own folders)."""
    path = Path(output)
    if path.suffix.lower() not in FORMATS:
        raise GroklabError(f"{flag}: unknown figure format {path.suffix or '(none)'!r}; use .png, .svg or .pdf")
    return output_file(path, flag) if user_given else path


def save_figure(fig: Figure, path: Path) -> Path:
    """Write `fig` to `path` atomically (folders of groklab's own made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format=path.suffix.lower().lstrip("."))
    return path
