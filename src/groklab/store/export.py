"""Export metrics for pandas, polars, R or a spreadsheet: CSV, or Parquet with the `parquet` extra."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from groklab.errors import GroklabError
from groklab.store.db import Store
from groklab.store.outputs import atomic_path, output_file

FORMATS = ("csv", "parquet")


def metric_table(store: Store, run_id: str, layout: str, missing: object = math.nan) -> tuple[list[str], list[list[object]]]:
    """(columns, rows): wide = one row per step with a column per metric (`missing` where a metric was not
    logged at that step); long = (step, name, value)."""
    rows = store.metric_rows(run_id)
    if layout == "long":
        return ["step", "name", "value"], [[s, n, v] for s, n, v in rows]
    names = sorted({n for _, n, _ in rows}, key=lambda n: (n.startswith("weight_norm/"), n))
    by_step: dict[int, dict[str, float]] = {}
    for s, n, v in rows:
        by_step.setdefault(s, {})[n] = v
    table = [[s, *(by_step[s].get(n, missing) for n in names)] for s in sorted(by_step)]
    return ["step", *names], table


def check_table_output(fmt: str, output: str | Path) -> Path:
    """The output path and format checked before the table is built."""
    if fmt not in FORMATS:
        raise GroklabError(f"--format: unknown table format {fmt!r}; choose csv or parquet")
    if fmt == "parquet":
        _pyarrow()
    return output_file(output)


def write_table(columns: list[str], rows: list[list[object]], fmt: str, output: str | Path) -> Path:
    """Write a table as CSV or Parquet, atomically. A list or dict cell (a config value) is written as JSON."""
    path = check_table_output(fmt, output)
    rows = [[json.dumps(v) if isinstance(v, list | dict) else v for v in r] for r in rows]
    with atomic_path(path) as tmp:
        if fmt == "csv":
            with tmp.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(columns)
                w.writerows(rows)
        else:
            pa, pq = _pyarrow()
            data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
            try:
                table = pa.table(data)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column mixing types (ints and strings): as text
                table = pa.table({c: _uniform(v) for c, v in data.items()})
            pq.write_table(table, tmp)
    return path


def _uniform(values: list[object]) -> list[object]:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float, bool} or len(kinds) <= 1:
        return values
    return [None if v is None else str(v) for v in values]


def _pyarrow() -> tuple[object, object]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GroklabError("--format parquet needs pyarrow: pip install 'groklab[parquet]'") from None
    return pa, pq


def export_run(store: Store, run_id: str, fmt: str, output: str | Path | None, layout: str = "wide") -> Path:
    path = check_table_output(fmt, output or f"{run_id}.{fmt}")
    columns, rows = metric_table(store, run_id, layout)
    return write_table(columns, rows, fmt, path)
