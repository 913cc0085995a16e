"""Analysis of stored curves: grokking events."""

from groklab.analysis.events import first_crossing, grokking_events

__all__ = ["first_crossing", "grokking_events"]
