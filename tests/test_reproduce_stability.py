"""The numerical-stability reproduction's claim logic on synthetic runs that must PASS, FAIL or stay n/a, and a
tiny end to end."""

from __future__ import annotations

import json

from groklab.cli.main import main
from groklab.reproductions.common import RunView
from groklab.reproductions.numerical_stability import ARMS, claims

STEPS = list(range(0, 1001, 50))
BUDGETS = dict.fromkeys(ARMS, 1000)


def run(seed: int, grok_at: int | None = None, sc_at: int | None = None, end_acc: float = 0.0) -> RunView:
    """Test accuracy jumps to 1 at `grok_at` (else creeps linearly to `end_acc`); the zero-loss share jumps to 1 at `sc_at`."""
    acc = [1.0 if grok_at is not None and s >= grok_at else end_acc * s / 1000 for s in STEPS]
    sc = [1.0 if sc_at is not None and s >= sc_at else 0.0 for s in STEPS]
    return RunView(f"r{seed}", seed, {"test_acc": (STEPS, acc), "sc_zero_loss": (STEPS, sc)}, {})


def paper_picture(**arms: list[RunView]) -> dict[str, list[RunView]]:
    seeds = range(3)
    picture = {
        "float32": [run(s, sc_at=300) for s in seeds],
        "float64": [run(s, sc_at=700) for s in seeds],
        "stablemax": [run(s, grok_at=800) for s in seeds],
        "orthograd": [run(s, grok_at=150) for s in seeds],
        "baseline": [run(s) for s in seeds],
    }
    return {**picture, **arms}


def results(arms: dict[str, list[RunView]]) -> list[str]:
    return [r["result"] for r in claims(arms, BUDGETS)]


def test_the_papers_picture_passes_every_claim():
    assert results(paper_picture()) == ["PASS"] * 4


def test_each_claim_fails_when_its_picture_does_not_hold():
    seeds = range(3)
    assert results(paper_picture(float32=[run(s, sc_at=300, grok_at=600) for s in seeds]))[0] == "FAIL"  # float32 grokked
    assert results(paper_picture(float32=[run(s) for s in seeds]))[0] == "FAIL"  # no collapse
    assert results(paper_picture(float64=[run(s, sc_at=100) for s in seeds]))[1] == "FAIL"  # float64 collapsed sooner
    full = {**BUDGETS, "stablemax": 80_000}
    assert [r["result"] for r in claims(paper_picture(stablemax=[run(s) for s in seeds]), full)][2] == "FAIL"  # the paper's budget
    assert results(paper_picture(orthograd=[run(s) for s in seeds]))[3] == "FAIL"  # ⊥Grad never generalized
    assert results(paper_picture(baseline=[run(s, grok_at=100) for s in seeds]))[3] == "FAIL"  # the baseline was sooner


def test_what_the_budget_cannot_decide_is_na_with_the_reason():
    for stuck in ([run(s, end_acc=0.6) for s in range(3)], [run(s) for s in range(3)]):  # rising, or still at chance
        rows = claims(paper_picture(stablemax=stuck), BUDGETS)
        assert rows[2]["result"] == "n/a" and "undecided in 1000 steps" in rows[2]["measured"]
    rows = claims(paper_picture(float32=[run(0, sc_at=300), run(1)]), BUDGETS)  # one seed never collapsed
    assert rows[1]["result"] == "n/a" and "no onset to delay" in rows[1]["measured"]
    rows = claims(paper_picture(orthograd=[]), BUDGETS)
    assert rows[3]["result"] == "n/a" and "orthograd" in rows[3]["measured"]


def test_float64_that_never_collapses_within_the_budget_counts_as_later():
    rows = claims(paper_picture(float64=[run(s) for s in range(3)]), BUDGETS)
    assert rows[1]["result"] == "PASS" and "3 of 3 seed(s) not within 1000 steps" in rows[1]["measured"]


def test_the_command_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    tiny = ["task.p=11", "model.width=16", "schedule.steps=20", "schedule.eval_every=5", "run.device=cpu"]
    args = ["reproduce", "numerical-stability", *tiny, "--quick", "--seeds", "2", "--quiet"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "(a) without weight decay" in out and "(d) ⊥Grad" in out
    saved = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert saved["seeds"] == 2 and len(saved["claims"]) == 4 and set(saved["sweeps"]) == set(ARMS)
    assert (tmp_path / "out" / "numerical_stability.png").stat().st_size > 10_000
