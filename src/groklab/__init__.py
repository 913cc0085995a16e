"""groklab: a laboratory for grokking experiments."""

from groklab.api import Run, open_run, run
from groklab.version import __version__

__all__ = ["Run", "__version__", "open_run", "run"]
