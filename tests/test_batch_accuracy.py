"""train_acc_batches: the train accuracy Davies et al.'s runner logs (train mode, the last epoch's minibatches)."""

from __future__ import annotations

import pytest
import torch

import groklab
from groklab.api import resume
from groklab.training.batch_accuracy import SINGLE_BATCH_UNTIL, BatchAccuracy
from helpers import TINY, InterruptAt


def final(run, name: str) -> float:
    return run.metrics([name])[name][1][-1]


def test_window_is_the_last_epoch_and_single_batch_early():
    acc = BatchAccuracy(steps_per_epoch=3)
    for correct in (1, 2, 3, 4):
        acc.add(torch.tensor(correct), 4)
    assert acc.value(SINGLE_BATCH_UNTIL - 1).item() == 1.0  # the newest batch alone
    assert acc.value(SINGLE_BATCH_UNTIL).item() == pytest.approx((2 + 3 + 4) / 12)  # the last three batches, unweighted
    restored = BatchAccuracy(3)
    restored.load_state_dict(acc.state_dict())
    assert restored.value(SINGLE_BATCH_UNTIL).item() == acc.value(SINGLE_BATCH_UNTIL).item()
    assert BatchAccuracy(3).value(5) is None


def test_ensemble_member_state_keeps_its_own_entries():
    acc = BatchAccuracy(2)
    acc.add(torch.tensor([1, 2]), 2)
    acc.add(torch.tensor([2, 0]), 2)
    member = BatchAccuracy(2)
    member.load_state_dict(acc.state_dict(member=1))
    assert member.value(SINGLE_BATCH_UNTIL).item() == pytest.approx(0.5)  # (1.0 + 0.0) / 2


def test_equals_eval_mode_train_accuracy_with_full_batches_and_no_dropout(tmp_path):
    """At every evaluation but the last: that one follows the final update, and no training forward runs after it
    (as in the authors' runner, the logged value is then the last step's)."""
    run = groklab.run(None, [*TINY, "schedule.steps=40"], runs_dir=tmp_path)
    m = run.metrics(["train_acc", "train_acc_batches"])
    assert m["train_acc_batches"][0] == m["train_acc"][0]
    assert m["train_acc_batches"][1][:-1] == m["train_acc"][1][:-1]


def test_is_the_train_mode_accuracy_under_dropout(tmp_path):
    run = groklab.run(None, [*TINY, "schedule.steps=40", "model.dropout=0.5"], runs_dir=tmp_path)
    m = run.metrics(["train_acc", "train_acc_batches"])
    assert m["train_acc_batches"][0] == m["train_acc"][0]  # the same steps
    assert any(abs(a - b) > 1e-6 for a, b in zip(m["train_acc_batches"][1], m["train_acc"][1], strict=True))


def test_mean_over_an_epoch_of_frozen_minibatches_is_the_train_accuracy(tmp_path):
    """An independent oracle: with the weights frozen (lr 1e-30) and no dropout, the mean accuracy of one epoch's
    equal-sized minibatches is the accuracy on the whole train set. 84 pairs in 4 batches of 21; the last
    evaluation (step 1004, past SINGLE_BATCH_UNTIL) reads the batches of steps 1000-1003, exactly one epoch."""
    run = groklab.run(None, [*TINY, "schedule.steps=1004", "schedule.batch_size=21", "optim.lr=1e-30"], runs_dir=tmp_path)
    assert final(run, "train_acc_batches") == pytest.approx(final(run, "train_acc"), abs=1e-12)
    steps, early = run.metrics(["train_acc_batches"])["train_acc_batches"]
    assert steps[1] < SINGLE_BATCH_UNTIL and early[1] * 21 == pytest.approx(round(early[1] * 21))  # one batch of 21 early on


def test_resume_past_the_first_epochs_keeps_the_window(tmp_path):
    overrides = [*TINY, "schedule.steps=1100", "schedule.batch_size=16", "model.dropout=0.1", "schedule.checkpoint_every=500"]
    whole = groklab.run(None, overrides, runs_dir=tmp_path / "a")
    part = groklab.run(None, overrides, runs_dir=tmp_path / "b", reporter=InterruptAt(1050))
    assert part.status == "interrupted"
    resumed = resume(part.id, tmp_path / "b")
    assert resumed.store.metric_rows(resumed.id) == whole.store.metric_rows(whole.id)
