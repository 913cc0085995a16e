"""The fourier-circuits reproduction's claim logic on synthetic runs that must PASS and must FAIL, and a tiny end to end."""

from __future__ import annotations

import json

from groklab.cli.main import main
from groklab.reproductions.fourier_circuits import RunView, claims, phases
from helpers import TINY

STEPS = list(range(0, 1001, 50))


def curve(fn):
    return (STEPS, [float(fn(s)) for s in STEPS])


def grokking_run(
    seed: int, formation: int = 300, cleanup: int = 700, keys: int = 5, excluded_rise: float = 2.0, norm_falls: bool = True
) -> RunView:
    """Train loss fitted by step 100; the restricted loss drops at `formation`, the test loss at `cleanup`."""
    m = {
        "train_loss": curve(lambda s: 3.0 if s < 100 else 0.01),
        "test_loss": curve(lambda s: 8.0 if s < cleanup else 0.05),
        "test_acc": curve(lambda s: 0.05 if s < cleanup else 1.0),
        "fourier_restricted_loss": curve(lambda s: 5.0 if s < formation else 0.1),
        "fourier_excluded_loss": curve(lambda s: 0.01 if s < 150 else 0.01 + excluded_rise),
        "fourier_key_freqs": curve(lambda s: 1 if s < formation else keys),
        "fourier_gini_embed": curve(lambda s: 0.1 if s < formation else 0.8),
        "weight_norm": curve(lambda s: 50 if s <= cleanup or not norm_falls else 30),
    }
    events = {"t_fit": (100, 0.99), "t_grok": (cleanup, 0.99)}
    return RunView(f"r{seed}", seed, m, events)


def test_nandas_picture_passes_every_claim():
    views = [grokking_run(s) for s in range(3)]
    assert phases(views[0]) == (100, 300, 700)
    rows = claims(views)
    assert [r["result"] for r in rows] == ["PASS"] * 4, rows


def test_each_claim_fails_when_its_picture_does_not_hold():
    assert claims([grokking_run(s, keys=30) for s in range(3)])[0]["result"] == "FAIL"  # no handful
    late = [grokking_run(0), grokking_run(1, formation=900, cleanup=700)]  # the circuit forms after the test loss falls
    assert claims(late)[1]["result"] == "FAIL" and claims(late)[3]["result"] == "FAIL"
    assert claims([grokking_run(s, excluded_rise=-0.005) for s in range(2)])[2]["result"] == "FAIL"  # excluded loss falls
    assert claims([grokking_run(s, norm_falls=False) for s in range(2)])[3]["result"] == "FAIL"  # no cleanup of the weights


def test_no_grokked_run_leaves_every_claim_undecided():
    never = grokking_run(0)
    never.events = {"t_fit": (100, 0.99), "t_grok": (None, None)}
    rows = claims([never])
    assert [r["result"] for r in rows] == ["n/a"] * 4 and all("no run grokked" in r["measured"] for r in rows)


def test_the_command_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    runs = tmp_path / "runs"
    tiny = [o for o in TINY if not o.startswith(("task.p", "model.", "run.device"))]
    args = ["reproduce", "fourier-circuits", "task.p=13", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64", *tiny]
    assert main([*args, "--quick", "--seeds", "2", "--quiet", "--runs-dir", str(runs), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "(a) after grokking" in out and "(d) memorization" in out
    saved = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert saved["seeds"] == 2 and len(saved["claims"]) == 4
    assert len(list((tmp_path / "out").glob("circuit_s*.png"))) == 2


def test_the_cleanup_is_read_off_the_accuracy_not_a_swing_of_the_memorized_test_loss():
    v = grokking_run(0)
    v.m["test_loss"] = curve(lambda s: 30.0 if s < 200 else (5.0 if s < 700 else 0.05))  # the largest fall comes at 200
    assert phases(v) == (100, 300, 700)
