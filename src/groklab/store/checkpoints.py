"""Checkpoints: model, optimizer, filter and RNG states at a step, written atomically, read with weights_only."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from groklab.errors import GroklabError

LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # an ensemble member's checkpoint before its latest (training/runs.py, train_ensemble)


def save_checkpoint(run_dir: Path, state: dict[str, Any], step: int, keep: bool = False, previous: bool = False) -> Path:
    """Write `state` to run_dir/checkpoint.pt via a temporary file, so a kill never leaves a torn file.
    `previous`: first move the latest to checkpoint.prev.pt, so that members of an ensemble killed between
    their checkpoints' writes can all go back to one step."""
    return _write_atomic(run_dir, lambda path: torch.save(state, path), step, keep, previous)


def save_checkpoint_bytes(run_dir: Path, blob: bytes, step: int, keep: bool = False, previous: bool = False) -> Path:
    """The same, for a checkpoint already serialized elsewhere (a remote worker's)."""
    return _write_atomic(run_dir, lambda path: path.write_bytes(blob), step, keep, previous)


def _fsync(path: Path) -> None:
    """Push a file (or a folder's entries) to the disk, so a rename after it never points at unwritten data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(run_dir: Path, write: Callable[[Path], Any], step: int, keep: bool, previous: bool = False) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LATEST
    tmp = run_dir / f".{LATEST}.{os.getpid()}.tmp"
    try:
        write(tmp)
        _fsync(tmp)  # the data first, then the name: a crash leaves the old checkpoint or the new one, whole
    except (OSError, RuntimeError) as exc:  # a full disk (torch.save says RuntimeError): the latest stays whole
        tmp.unlink(missing_ok=True)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
        raise GroklabError(f"checkpoint {path}: cannot write it ({why}; is the disk full?); the previous one is kept") from None
    if previous and path.exists():  # a second name for the latest, then the name moved: checkpoint.pt never goes missing
        link = run_dir / f".{PREVIOUS}.{os.getpid()}.tmp"
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, run_dir / PREVIOUS)
    os.replace(tmp, path)
    _fsync(run_dir)
    if keep:
        kept = run_dir / "checkpoints" / f"step_{step:09d}.pt"
        kept.parent.mkdir(exist_ok=True)
        try:
            os.link(path, kept)
        except OSError:
            write(kept)
    return path


def remove_temporaries(run_dir: Path) -> None:
    """Remove the half-written files (`.NAME.PID.tmp`) a killed writer left in a run's folder; called once the run
    is claimed, when no other process writes there."""
    for folder in (run_dir, run_dir / WEIGHTS):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            if TEMPORARY.fullmatch(tmp.name) and tmp.is_file():
                tmp.unlink(missing_ok=True)


TEMPORARY = re.compile(r"\..+\.[0-9]+\.tmp")  # _write_atomic's and save_weights_bytes's names
WEIGHTS = "weights"  # the run folder's snapshots: weights/step_000001234.pt, a model state dict each


def save_weights_bytes(run_dir: Path, blob: bytes, step: int) -> Path:
    """A weight snapshot at `step` (a serialized state dict), written atomically."""
    folder = run_dir / WEIGHTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:09d}.pt"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    return path


def weight_steps(run_dir: Path) -> list[int]:
    """The steps a run has weight snapshots of, ascending."""
    folder = run_dir / WEIGHTS
    return sorted(int(p.stem.removeprefix("step_")) for p in folder.glob("step_*.pt")) if folder.is_dir() else []


def load_weights(run_dir: Path, step: int, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The state dict snapshotted at `step`, or None if there is none; a damaged file is one line naming it."""
    path = run_dir / WEIGHTS / f"step_{step:09d}.pt"
    if not path.is_file():
        return None
    blob = path.read_bytes()
    why = damage(blob)
    if why is None:
        try:
            return torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
        except Exception as exc:  # torch's RuntimeError, UnpicklingError, ...
            why = first_line(exc)
    raise GroklabError(f"weight snapshot {path}: {why}")


def checkpoint_bytes(run_dir: Path, previous: bool = False) -> bytes | None:
    """The latest (or the previous) checkpoint's file contents, or None if the run has none."""
    path = run_dir / (PREVIOUS if previous else LATEST)
    return path.read_bytes() if path.exists() else None


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu", previous: bool = False) -> dict[str, Any] | None:
    """The latest checkpoint of a run (or the one before it, where kept), or None if it has none; a file that is
    not a whole groklab checkpoint is a one-line error naming it (truncated, zero-filled, not a zip, a folder in
    its place, bytes changed, not a checkpoint)."""
    path = run_dir / (PREVIOUS if previous else LATEST)
    if not path.exists():
        return None
    if path.is_dir():
        raise DamagedCheckpointError(path, "a folder, not a file")
    return read_checkpoint(path.read_bytes(), path, map_location)


def damage(blob: bytes) -> str | None:
    """What is wrong with a torch.save file's bytes, or None: it must be a whole zip archive whose every entry
    matches its CRC (torch.load does not check them, so changed bytes in a tensor would load, silently wrong)."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return f"not a whole zip archive ({first_line(exc)})"
    return None if bad is None else f"its entry {bad} does not match its checksum (the file was changed or damaged)"


def read_checkpoint(blob: bytes, path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's bytes (read from `path`, named in errors) as its state, its zip entries' CRCs checked first."""
    why = damage(blob)
    if why is not None:
        raise DamagedCheckpointError(path, why)
    try:
        state = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise DamagedCheckpointError(path, first_line(exc)) from None
    if not isinstance(state, dict) or "step" not in state:
        raise DamagedCheckpointError(path, "not a groklab checkpoint (no step)")
    return state


class DamagedCheckpointError(GroklabError):
    """A checkpoint that cannot be read or does not fit its run; the run can restart from step 0."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        run = path.parent.name
        super().__init__(f"checkpoint {path}: {why}; `groklab resume {run} --from-scratch` restarts the run from step 0")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def serialize(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()
