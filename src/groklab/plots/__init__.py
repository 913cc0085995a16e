"""Figures drawn from the run store."""

from groklab.plots.run_figure import plot_run
from groklab.plots.sweep_figures import plot_sweep

__all__ = ["plot_run", "plot_sweep"]
