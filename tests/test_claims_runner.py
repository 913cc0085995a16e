"""The claim runner: one claim alone trains only its sweeps, claims run one by one build the whole table, a sweep
two claims need trains once, --list and --estimate train nothing, and bad names are one-line errors."""

from __future__ import annotations

import json

import pytest

import groklab
from groklab.cli.main import main
from groklab.reproductions import RECIPES
from groklab.reproductions.claim import Claim, Need, Recipe, Setting, claim_row
from groklab.reproductions.runner import plan, prepare, reproduce, setting_for
from groklab.store import Store
from groklab.sweeps import run_sweep
from helpers import TINY

TINY_ARMS = [o for o in TINY if not o.startswith(("schedule.steps", "run.device"))] + ["schedule.steps=20", "schedule.batch_size=32"]


def test_one_claim_trains_only_its_sweeps_and_the_table_grows_claim_by_claim(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["reproduce", "grokfast", "--scale", "quick", "--seeds", "2", *TINY_ARMS, "-q", "--runs-dir", str(runs), "--out", str(out)]
    assert main([*argv, "--claim", "baseline"]) == 0
    printed = capsys.readouterr().out
    assert "claim(s) baseline" in printed and "] (a)" in printed and "] (b)" not in printed
    with Store(runs, create=False) as store:
        assert sorted(sw.name for sw in store.sweeps()) == ["grokfast-baseline-quick", "grokfast-grokfast-quick"]
    first = json.loads((out / "claims.json").read_text())
    assert [r["name"] for r in first["claims"]] == ["baseline"]

    assert main([*argv, "--claim", "matched"]) == 0  # the grokfast arm is stored: only the matched arm trains
    with Store(runs, create=False) as store:
        assert sorted(sw.name for sw in store.sweeps()) == ["grokfast-baseline-quick", "grokfast-grokfast-quick", "grokfast-matched-quick"]
        assert len(store.runs()) == 6
    both = json.loads((out / "claims.json").read_text())
    assert [r["name"] for r in both["claims"]] == ["baseline", "matched"]  # in the recipe's order
    assert both["claims"][0] == first["claims"][0] and set(both["sweeps"]) == {"grokfast", "baseline", "matched"}

    assert main(argv) == 0  # every claim again: nothing left to train, the same rows
    again = json.loads((out / "claims.json").read_text())
    assert again["claims"] == both["claims"]
    with Store(runs, create=False) as store:
        assert len(store.runs()) == 6


def test_a_sweep_two_claims_need_trains_once(tmp_path):
    recipe = RECIPES.get("progress-measures")
    planned = plan(recipe, Setting("quick", 3), [recipe.claim("med"), recipe.claim("med-rank"), recipe.claim("toeplitz")])
    assert list(planned) == ["med", "toeplitz"] and planned["med"].claims == ["med", "med-rank", "toeplitz"]
    # the quick plan has no Toeplitz baseline sweep of its own: the MED runs at p = 97 and 30% are that arm


def test_claims_that_give_one_label_two_meanings_are_a_recipe_bug():
    a = Claim("a", "", lambda s: {"x": Need("x", "grokfast")}, lambda ev: [])
    b = Claim("b", "", lambda s: {"x": Need("x", "grokfast", ("optim.lr=0.1",))}, lambda ev: [])
    with pytest.raises(RuntimeError, match="two sweeps by 'x'"):
        plan(Recipe("r", "", 1, (a, b), {}), Setting("quick", 1), [a, b])


def test_a_stored_sweep_of_another_setting_is_refused_not_continued(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["reproduce", "fourier-circuits", "--quick", "--seeds", "2", "-q", "--runs-dir", str(runs)]
    assert main([*argv, *TINY_ARMS, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*argv, *TINY_ARMS, "optim.lr=0.002", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "fourier-circuits-quick" in err and "other overrides" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_list_and_estimate_print_the_plan_and_train_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["reproduce", "fourier-circuits", "--list", *TINY_ARMS, "--runs-dir", str(runs)]) == 0
    listed = capsys.readouterr().out
    recipe = RECIPES.get("fourier-circuits")
    for claim in recipe.claims:
        assert f"{claim.name}: " in listed
    for scale in ("smoke", "quick", "paper"):
        assert f"  {scale} " in listed
    assert "1 runs x 3 steps, 1 seed(s)" in listed and "3 runs x 20 steps, 3 seed(s)" in listed and "none stored" in listed
    assert not runs.exists()  # nothing written

    assert main(["reproduce", "fourier-circuits", "--quick", "--seeds", "2", *TINY_ARMS, "-q", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["reproduce", "fourier-circuits", "--estimate", "--quick", "--seeds", "2", *TINY_ARMS, "--runs-dir", str(runs)]) == 0
    estimated = capsys.readouterr().out
    assert "  quick " in estimated and "  paper " not in estimated and "2 of 2 stored finished" in estimated and "~0 s to go" in estimated
    with Store(runs, create=False) as store:
        assert len(store.runs()) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["grokfast", "--claim", "nope"], "--claim: unknown claim 'nope' of grokfast; choose one of baseline, matched"),
        (["nope"], "paper: unknown paper 'nope'; choose one of deep-grokking"),
        (["grokfast", "--quick", "--scale", "paper"], "--quick: is --scale quick"),
        (["grokfast", "--dims", "1:4"], "--dims: only for double-descent, not grokfast"),
        (["grokfast", "--list", "--estimate"], "--estimate:"),
        (["grokfast", "--seeds", "0"], "--seeds: must be >= 1"),
    ],
)
def test_bad_reproduce_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    runs = tmp_path / "runs"
    assert main(["reproduce", *argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not runs.exists()


def test_the_api_takes_claims_and_scale(tmp_path):
    done = groklab.reproduce(
        "fourier-circuits", scale="quick", claims=["phases"], seeds=2, overrides=TINY_ARMS, runs_dir=tmp_path / "runs", progress=False
    )
    assert [c["name"] for c in done.claims] == ["phases"] and done.out == tmp_path / "runs" / "reproduce" / "fourier-circuits-quick"
    listed = groklab.reproduction_plan(
        "fourier-circuits", claims=["phases"], scale="quick", seeds=2, overrides=TINY_ARMS, runs_dir=tmp_path / "runs"
    )
    assert "phases:" in listed and "key-frequencies" not in listed and "2 of 2 stored finished" in listed


def test_a_claim_whose_scale_cannot_test_it_says_why(tmp_path):
    recipe = RECIPES.get("progress-measures")
    setting = setting_for(recipe, "quick", 1, ["schedule.steps=5"], {})
    rows = reproduce(prepare(recipe, setting, ["polygons"]), Store(tmp_path / "runs"), tmp_path / "out", run_sweep, echo=lambda _: None)
    assert len(rows) == 1 and rows[0]["result"] == "n/a" and "a GPU job" in rows[0]["measured"]
    with Store(tmp_path / "runs", create=False) as store:
        assert store.sweeps() == []


def test_smoke_rows_are_never_decided():
    """At the smoke scale a judge's PASS or FAIL is reported as n/a: a handful of steps decides nothing."""
    from groklab.reproductions.runner import judged

    claim = Claim("c", "", lambda s: {}, lambda ev: [claim_row("c", "p", "m", True)])
    assert judged(claim, claim_row("c", "p", "m", True), Setting("smoke", 1))["result"] == "n/a"
    assert judged(claim, claim_row("c", "p", "m", False), Setting("quick", 1))["result"] == "FAIL"
