"""Keep freed CPU tensor memory in the process instead of returning it to the OS after every op.

glibc serves allocations above 128 KiB with fresh mmap()s by default, so every
step of a CPU training loop page-faults its activations in again. Raising the
mmap and trim thresholds (what MALLOC_MMAP_THRESHOLD_ etc. do) makes the heap
reuse those pages. No effect off glibc; set GROKLAB_MALLOC_TUNING=0 to skip.

A process-wide change, so the processes groklab owns apply it at their entry (the CLI, sweep workers,
Ray tasks, the benchmarks); a notebook that trains through the Python API calls it if it wants it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_done = False


def tune_malloc() -> bool:
    """Apply the tuning once per process; True if glibc accepted it."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get("GROKLAB_MALLOC_TUNING", "1") == "0":
        return _done
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = all(
            libc.mallopt(param, value)
            for param, value in ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))
        )
    except (OSError, AttributeError):
        return False
    _done = bool(ok)
    return _done
