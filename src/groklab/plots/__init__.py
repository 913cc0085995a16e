"""Figures drawn from the run store: `draw_*` return a matplotlib Figure, `plot_*` write it to a file."""

from groklab.plots.run_figure import draw_run, plot_run
from groklab.plots.sweep_figures import draw_sweep, plot_sweep

__all__ = ["draw_run", "draw_sweep", "plot_run", "plot_sweep"]
