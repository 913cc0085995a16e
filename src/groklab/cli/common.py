"""Helpers shared by the CLI's commands: argument splitting, formatting, a run's summary."""

from __future__ import annotations

import json
import time
from typing import Any

from groklab.errors import GroklabError
from groklab.jsonsafe import finite


def split_args(args: list[str]) -> tuple[str | None, list[str]]:
    preset = None
    overrides = []
    for i, a in enumerate(args):
        if "=" in a:
            overrides.append(a)
        elif i == 0:
            preset = a
        else:
            raise GroklabError(f"unexpected argument {a!r}: give one PRESET first, then key=value overrides")
    return preset, overrides


def progress_bar() -> Any:
    from groklab.training.progress import ProgressBar

    return ProgressBar()


def fmt_step(ev: dict[str, Any] | None) -> str:
    return "-" if not ev or ev.get("step") is None else str(ev["step"])


def show_data(store: Any, run_id: str) -> dict[str, Any]:
    from groklab.api import Run
    from groklab.store.db import DAMAGED, DamagedError

    run = Run(store, run_id)
    rec = run.record.as_dict()
    config = rec.pop("config")
    try:
        events = {k: {"step": s, "value": v} for k, (s, v) in sorted(run.events().items())}
        final = {k: v for k, v in sorted(run.final().items()) if not k.startswith("weight_norm/")}
    except DamagedError as exc:  # shown as damaged, with what is wrong, as a damaged row is
        events, final = {}, {}
        rec |= {"status": DAMAGED, "message": str(exc)}
    return {"run": rec, "events": events, "final": final, "config": config}


def when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def dumps_json(obj: Any) -> str:
    """JSON with NaN and infinities as null (json.dumps would write the invalid NaN/Infinity)."""
    return json.dumps(finite(obj), indent=2)
