"""groklab: a laboratory for grokking experiments."""

from groklab.api import (
    Reproduction,
    Run,
    Sweep,
    open_run,
    open_sweep,
    phase_diagram,
    reproduce,
    reproduction_plan,
    resume,
    resume_sweep,
    run,
    sweep,
)
from groklab.version import __version__

__all__ = [
    "Reproduction",
    "Run",
    "Sweep",
    "__version__",
    "open_run",
    "open_sweep",
    "phase_diagram",
    "reproduce",
    "reproduction_plan",
    "resume",
    "resume_sweep",
    "run",
    "sweep",
]
