"""The embedded run store: SQLite metrics and events, checkpoints, exports."""

from groklab.store.checkpoints import load_checkpoint, save_checkpoint
from groklab.store.db import COMPLETED, ENDED, RunRecord, Store, SweepPoint, SweepRecord, default_runs_dir, is_live

__all__ = [
    "COMPLETED",
    "ENDED",
    "RunRecord",
    "Store",
    "SweepPoint",
    "SweepRecord",
    "default_runs_dir",
    "is_live",
    "load_checkpoint",
    "save_checkpoint",
]
