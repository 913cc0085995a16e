"""JSON without NaN or infinities: they become null, since json.dumps would write the invalid NaN/Infinity
that browsers and most JSON readers reject."""

from __future__ import annotations

import math
from typing import Any


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj
