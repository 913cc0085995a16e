"""The grokfast reproduction: the matched baseline's settings, the claim logic on synthetic runs that must
PASS, FAIL or stay n/a, and a tiny end to end."""

from __future__ import annotations

import json

import pytest

from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.reproductions.claim import Setting
from groklab.reproductions.common import RunView
from groklab.reproductions.grokfast import ARMS, PRESET, arm_overrides, claims
from helpers import TINY

STEPS = list(range(0, 5001, 50))
BUDGETS = dict.fromkeys(ARMS, 5000)


def run(seed: int, t_gen: int | None) -> RunView:
    return RunView(f"r{seed}", seed, {"test_acc": (STEPS, [1.0 if t_gen is not None and s >= t_gen else 0.1 for s in STEPS])}, {})


def results(grokfast: list[RunView], baseline: list[RunView], matched: list[RunView]) -> list[str]:
    return [r["result"] for r in claims({"grokfast": grokfast, "baseline": baseline, "matched": matched}, BUDGETS)]


def test_the_matched_baseline_scales_lr_up_and_weight_decay_down_by_one_plus_lambda():
    cfg = resolve_config(PRESET, arm_overrides("matched", Setting("quick", 3, ("optim.grokfast.lamb=3",))))
    base = resolve_config(PRESET, [])
    assert cfg.optim.grokfast.kind == "none"
    assert cfg.optim.lr == pytest.approx(4 * base.optim.lr) and cfg.optim.weight_decay == pytest.approx(base.optim.weight_decay / 4)
    paper_baseline = resolve_config(PRESET, arm_overrides("baseline", Setting("quick", 3)))
    assert paper_baseline.optim.lr == base.optim.lr and paper_baseline.optim.weight_decay == 0  # their README: main.py, no filter, no decay


def test_grokfast_sooner_than_both_passes_with_the_speedups():
    rows = claims({"grokfast": [run(s, 500) for s in range(3)], "baseline": [run(s, 4000) for s in range(3)],
                   "matched": [run(0, 1000), run(1, 1500), run(2, None)]}, BUDGETS)  # fmt: skip
    assert [r["result"] for r in rows] == ["PASS", "PASS"]
    assert "×8.00" in rows[0]["measured"] and "≥ ×10.0 in 1 seed(s)" in rows[1]["measured"]


def test_a_baseline_as_fast_fails_and_nothing_generalized_is_na():
    fast = [run(s, 500) for s in range(3)]
    assert results(fast, [run(s, 4000) for s in range(3)], [run(s, 400) for s in range(3)]) == ["PASS", "FAIL"]
    assert results([run(s, None) for s in range(3)], [run(s, 800) for s in range(3)], fast)[0] == "FAIL"
    assert results([run(s, None) for s in range(3)], [run(s, None) for s in range(3)], fast)[0] == "n/a"


def test_the_command_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    tiny = [o for o in TINY if not o.startswith(("schedule.steps", "run.device"))]
    args = ["reproduce", "grokfast", *tiny, "schedule.steps=20", "schedule.batch_size=32", "--quick", "--seeds", "2", "--quiet"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    assert "(b) Grokfast-EMA generalizes sooner" in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert saved["seeds"] == 2 and set(saved["sweeps"]) == set(ARMS)
