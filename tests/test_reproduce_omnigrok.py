"""The omnigrok reproduction's claim logic on synthetic runs that must PASS, FAIL or stay n/a, its bad input,
and a tiny end to end on the real MNIST files where they are present."""

from __future__ import annotations

import json

from groklab.cli.main import main
from groklab.reproductions.common import RunView
from groklab.reproductions.omnigrok import GENERALIZED, PAPER_STEPS, claims
from test_mnist import REAL, needs_real

STEPS = list(range(0, 20001, 100))


def run(seed: int, t_fit: int | None, t_gen: int | None) -> RunView:
    acc = [GENERALIZED + 0.05 if t_gen is not None and s >= t_gen else 0.2 for s in STEPS]
    return RunView(f"r{seed}", seed, {"test_acc": (STEPS, acc)}, {"t_fit": (t_fit, 0.99)})


def results(free: list[RunView], fixed: list[RunView], budget: int = 20_000) -> list[str]:
    return [r["result"] for r in claims({"free": free, "fixed": fixed}, {"free": budget, "fixed": budget})]


def test_omnigroks_picture_passes():
    free = [run(s, 500, 12_000) for s in range(3)]
    fixed = [run(s, 500, 600) for s in range(3)]
    assert results(free, fixed) == ["PASS", "PASS"]


def test_each_claim_fails_when_its_picture_does_not_hold():
    prompt = [run(s, 500, 700) for s in range(3)]
    assert results(prompt, prompt)[0] == "FAIL"  # the large init generalized as it fitted: no delay
    assert results([run(s, None, None) for s in range(3)], prompt)[0] == "FAIL"  # never fitted
    late = [run(s, 500, 12_000) for s in range(3)]
    assert results(late, late)[1] == "FAIL"  # the fixed norm did not remove the delay
    assert results(late, [run(0, 500, None)])[1] == "FAIL"


def test_a_free_run_not_generalized_within_a_short_budget_is_undecided():
    waiting = [run(s, 500, None) for s in range(3)]
    rows = claims({"free": waiting, "fixed": [run(0, 500, 600)]}, {"free": 20_000, "fixed": 5_000})
    assert rows[0]["result"] == "n/a" and "undecided in 20000 steps" in rows[0]["measured"]
    assert results(waiting, [run(0, 500, 600)], budget=PAPER_STEPS)[0] == "FAIL"  # the paper's own budget decides


def test_missing_mnist_is_a_one_line_error_that_writes_nothing(tmp_path, capsys):
    args = ["reproduce", "omnigrok", "task.data_dir=/nonexistent", "--quick", "--runs-dir", str(tmp_path / "r")]
    assert main(args) == 2
    assert "task.data_dir" in capsys.readouterr().err and not (tmp_path / "r").exists()


@needs_real
def test_the_command_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    tiny = [f"task.data_dir={REAL}", "task.n_test=300", "schedule.steps=30", "schedule.eval_every=10", "run.dtype=float32"]
    args = ["reproduce", "omnigrok", *tiny, "--quick", "--seeds", "2", "--quiet"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    assert "(b) at a fixed small weight norm" in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert saved["seeds"] == 2 and len(saved["claims"]) == 2
    assert (tmp_path / "out" / "omnigrok.png").stat().st_size > 10_000
