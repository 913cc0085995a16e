"""Omnigrok's fixed weight norm: the total norm after every step equals the target, lone and per ensemble
member, the direction is the optimizer's, and bad values are refused."""

from __future__ import annotations

import pytest
import torch

import groklab
from groklab.api import resume
from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.training.fixed_norm import member_norms, rescale_to_
from helpers import TINY, InterruptAt
from test_ensemble import assert_members_match_lone_runs


def test_rescaling_hits_the_target_and_keeps_the_direction():
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)]
    before = torch.cat([p.reshape(-1) for p in params])
    rescale_to_(params, torch.tensor([2.5], dtype=torch.float64))
    after = torch.cat([p.reshape(-1) for p in params])
    assert after.norm().item() == pytest.approx(2.5, rel=1e-12)
    assert torch.allclose(after / after.norm(), before / before.norm(), atol=1e-14)


def test_each_stacked_member_is_held_at_its_own_target():
    gen = torch.Generator().manual_seed(1)
    stacked = [torch.randn(3, 4, 2, generator=gen, dtype=torch.float64), torch.randn(3, 6, generator=gen, dtype=torch.float64)]
    targets = torch.tensor([1.0, 7.0, 0.5], dtype=torch.float64)
    rescale_to_(stacked, targets, stacked=True)
    direct = torch.stack([torch.cat([p[k].reshape(-1) for p in stacked]).norm() for k in range(3)])
    assert torch.allclose(direct, targets, rtol=1e-12)
    assert torch.allclose(member_norms(stacked, stacked=True), targets, rtol=1e-12)


def test_a_run_at_fixed_norm_keeps_its_initial_norm(tmp_path):
    free = groklab.run(None, [*TINY, "schedule.steps=30", "run.dtype=float64"], runs_dir=tmp_path / "a")
    held = groklab.run(None, [*TINY, "schedule.steps=30", "run.dtype=float64", "optim.fixed_norm=0.5"], runs_dir=tmp_path / "b")
    norm_free, norm_held = free.metrics()["weight_norm"][1], held.metrics()["weight_norm"][1]
    assert norm_free[0] == pytest.approx(norm_held[0], rel=1e-12)  # the same init
    assert all(v == pytest.approx(0.5 * norm_held[0], rel=1e-9) for v in norm_held[1:])
    assert abs(norm_free[-1] - norm_free[0]) > 1e-3 * norm_free[0]  # without it the norm moves (here by about 1%)


def test_ensemble_members_at_fixed_norm_match_lone_runs(tmp_path):
    assert_members_match_lone_runs(tmp_path, [*TINY, "optim.fixed_norm=0.8", "run.dtype=float64"])


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_a_fixed_norm_that_is_not_positive_is_refused(value):
    with pytest.raises(ConfigError) as err:
        resolve_config(None, [f"optim.fixed_norm={value}"])
    assert err.value.field == "optim.fixed_norm"


def test_a_resumed_run_keeps_the_target_of_its_initialization(tmp_path):
    """The target is read from the rebuilt initial weights before the checkpoint loads: a resumed run ends as an
    uninterrupted one does."""
    overrides = [*TINY, "schedule.steps=40", "optim.fixed_norm=0.7"]
    whole = groklab.run(None, overrides, runs_dir=tmp_path / "a")
    part = groklab.run(None, overrides, runs_dir=tmp_path / "b", reporter=InterruptAt(25))
    assert part.status == "interrupted"
    resumed = resume(part.id, tmp_path / "b")
    assert resumed.store.metric_rows(resumed.id) == whole.store.metric_rows(whole.id)
