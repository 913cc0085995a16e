"""Lone and ensemble runs reproduce, bit for bit, the metrics groklab 0.1.0 recorded for them (tests/pinned.py),
and resume from the checkpoints that version wrote.

Bit-identity holds on the CPU kernels the numbers were recorded with (torch version and CPU capability, stored
with them); elsewhere, other SIMD kernels round differently, and the test compares to float32 precision instead.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from groklab.api import resume
from groklab.store import Store
from groklab.store.records import create_run
from groklab.training.setup import prepare
from pinned import CASES, DATA, PINNED, configs, record, train

RECORDED = json.loads(PINNED.read_text())
SAME_KERNELS = RECORDED["torch"] == torch.__version__ and RECORDED["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
CHECKPOINT_STEP = 12


def assert_values_equal(got: list[str], want: list[str], exact: bool, where: str) -> None:
    if exact:
        assert got == want, where
    else:
        assert [float(v) for v in got] == pytest.approx([float(v) for v in want], rel=1e-4, abs=1e-6), where


def assert_matches(got: dict, want: dict, exact: bool, from_step: int = 0) -> None:
    assert got["status"] == want["status"]
    assert sorted(got["metrics"]) == sorted(want["metrics"])
    for name, (steps, values) in want["metrics"].items():
        kept = [i for i, s in enumerate(steps) if s >= from_step]
        got_steps, got_values = got["metrics"][name]
        assert got_steps == [steps[i] for i in kept], name
        assert_values_equal(got_values, [values[i] for i in kept], exact, name)


@pytest.mark.parametrize("case", list(CASES))
def test_runs_match_the_pinned_metrics(tmp_path, case):
    store = Store(tmp_path)
    ids = train(case, store)
    want = RECORDED["cases"][case]
    assert len(ids) == len(want)
    for rid, member in zip(ids, want, strict=True):
        got = record(store, rid)
        assert_matches(got, member, SAME_KERNELS)
        if SAME_KERNELS:
            assert got["events"] == member["events"]


@pytest.mark.parametrize("case", list(CASES))
def test_resume_reads_old_checkpoints(tmp_path, case):
    """An old checkpoint of the case's first member, resumed alone: a lone run continues bit for bit; an
    ensemble member as its lone twin does (float reassociation), except with dropout, whose masks it drew
    from the ensemble's generator."""
    kind, _ = CASES[case]
    cfg = configs(case)[0]
    store = Store(tmp_path)
    rid = create_run(store, prepare(cfg).cfg, "cpu")
    shutil.copyfile(DATA / f"checkpoint_v0_{case}.pt", store.run_dir(rid) / "checkpoint.pt")
    store.set_status(rid, "interrupted", CHECKPOINT_STEP, "")
    assert resume(rid, runs_dir=tmp_path).status == "finished"
    got, want = record(store, rid), RECORDED["cases"][case][0]
    assert min(got["metrics"]["test_loss"][0]) == CHECKPOINT_STEP  # continued, not restarted
    if kind == "lone":
        assert_matches(got, want, SAME_KERNELS, from_step=CHECKPOINT_STEP)
    elif cfg.model.dropout == 0:
        for name, (steps, values) in want["metrics"].items():
            got_steps, got_values = got["metrics"][name]
            assert got_steps == [s for s in steps if s >= CHECKPOINT_STEP]
            kept = [float(v) for s, v in zip(steps, values, strict=True) if s >= CHECKPOINT_STEP]
            assert [float(v) for v in got_values] == pytest.approx(kept, rel=2e-4, abs=2e-5), name
