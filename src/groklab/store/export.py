"""Export a run's metrics for pandas, R or a spreadsheet: CSV, or Parquet with the `parquet` extra."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from groklab.errors import GroklabError
from groklab.store.db import Store


def metric_table(store: Store, run_id: str, layout: str) -> tuple[list[str], list[list[object]]]:
    """(columns, rows): wide = one row per step with a column per metric; long = (step, name, value)."""
    rows = store.metric_rows(run_id)
    if layout == "long":
        return ["step", "name", "value"], [[s, n, v] for s, n, v in rows]
    names = sorted({n for _, n, _ in rows}, key=lambda n: (n.startswith("weight_norm/"), n))
    by_step: dict[int, dict[str, float]] = {}
    for s, n, v in rows:
        by_step.setdefault(s, {})[n] = v
    table = [[s, *(by_step[s].get(n, math.nan) for n in names)] for s in sorted(by_step)]
    return ["step", *names], table


def export_run(store: Store, run_id: str, fmt: str, output: str | Path | None, layout: str = "wide") -> Path:
    path = Path(output) if output else Path(f"{run_id}.{fmt}")
    columns, rows = metric_table(store, run_id, layout)
    if fmt == "csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(rows)
        return path
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GroklabError("--format parquet needs pyarrow: pip install 'groklab[parquet]'") from None
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    pq.write_table(pa.table(data), path)
    return path
