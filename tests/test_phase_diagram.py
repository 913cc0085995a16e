"""Liu et al.'s four phases from events, a cell's majority, and `groklab phase-diagram` end to end on a tiny grid."""

from __future__ import annotations

import json

import pytest

from groklab.analysis.phases import PHASES, cell_phase, phase_of
from groklab.cli.main import main
from helpers import TINY


@pytest.mark.parametrize(
    ("t_fit", "t_grok", "phase"),
    [
        (100, 150, "comprehension"),
        (100, 1100, "comprehension"),  # exactly the delay: not yet grokking
        (100, 1101, "grokking"),
        (100, None, "memorization"),
        (None, None, "confusion"),
        (None, 300, "comprehension"),
    ],
)
def test_phase_of_a_run(t_fit, t_grok, phase):
    assert phase_of(t_fit, t_grok, delay=1000) == phase


def test_a_cell_takes_the_phase_most_seeds_are_in():
    assert cell_phase(["grokking", "memorization", "grokking"]) == "grokking"
    assert cell_phase(["memorization", "grokking"]) == "grokking"  # a tie goes to the earlier phase in PHASES
    assert cell_phase(["confusion"]) == "confusion"
    assert set(PHASES) == {"comprehension", "grokking", "memorization", "confusion"}


def test_the_command_classifies_every_cell(tmp_path, capsys):
    args = ["phase-diagram", "modular-addition", *TINY, "schedule.steps=40", "measures.enabled=[loss_acc]"]
    axes = ["--x", "optim.lr=1e-5,3e-3", "--y", "optim.weight_decay=0,1"]
    out = tmp_path / "out"
    assert main([*args, *axes, "--seeds", "2", "--delay", "10", "--quiet", "--runs-dir", str(tmp_path / "r"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "t_grok - t_fit > 10 steps" in printed and "phases seen:" in printed
    data = json.loads((out / "phases.json").read_text())
    assert len(data["cells"]) == 4 and all(len(c["runs"]) == 2 for c in data["cells"])
    tiny_lr = [c for c in data["cells"] if c["x"] == 1e-5]
    assert all(c["phase"] == "confusion" for c in tiny_lr)  # lr 1e-5 cannot fit in 40 steps
    assert (out / "phase_diagram.png").stat().st_size > 5_000
    # the same command again continues the stored sweep: nothing new is trained, the same table comes back
    assert main([*args, *axes, "--seeds", "2", "--delay", "10", "--quiet", "--runs-dir", str(tmp_path / "r"), "--out", str(out)]) == 0
    assert json.loads((out / "phases.json").read_text())["cells"] == data["cells"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--x", "optim.lr=0.1", "--y", "optim.lr=0.2"], "--y"),
        (["--x", "optim.lr", "--y", "optim.weight_decay=1"], "--x"),
        (["--x", "optim.lr=0.1", "--y", "optim.weight_decay=1", "--seeds", "0"], "--seeds"),
        (["--x", "optim.lr=-1", "--y", "optim.weight_decay=1"], "optim.lr"),
    ],
)
def test_bad_axes_are_one_line_errors_and_write_nothing(tmp_path, capsys, extra, message):
    assert main(["phase-diagram", "modular-addition", *extra, "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
