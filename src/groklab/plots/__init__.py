"""Figures drawn from the run store."""

from groklab.plots.run_figure import plot_run

__all__ = ["plot_run"]
