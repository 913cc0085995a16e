"""A reader of W&B's offline run files (`run-ID.wandb`), written from the format itself, as an oracle
independent of the sink: a 7-byte W&B header, then LevelDB log records in 32 KiB blocks, each a
protobuf `Record`. wandb 0.31 ships no Python reader of its own."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
    return out


def read_run(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the run record's id, project, name and config, the history rows) of an offline run file."""
    from wandb.proto import wandb_internal_pb2

    run: dict[str, Any] = {}
    history = []
    for raw in raw_records(path):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            config = {item.key: json.loads(item.value_json) for item in rec.run.config.update}
            run = {"id": rec.run.run_id, "project": rec.run.project, "name": rec.run.display_name, "config": config}
        elif kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
    return run, history
