"""groklab: a laboratory for grokking experiments."""

__version__ = "0.1.0"

from groklab.api import Run, open_run, run

__all__ = ["Run", "__version__", "open_run", "run"]
