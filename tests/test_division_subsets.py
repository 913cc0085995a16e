"""Davies et al.'s division subsets: their definition on p = 7 by hand, exact accuracies from a model whose
predictions are set, the error on a task that is not division, and a real run that stores them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.losses import loss_and_accuracy
from groklab.measures import MEASURES, EvalContext, measure_all
from groklab.measures.division_subsets import SUBSETS, division_subset_metrics, subset_masks
from groklab.store import Store
from groklab.tasks.base import TaskData, TaskSpec
from groklab.tasks.modular import OPS, ModularArithmetic, ModularConfig

P = 7
ALL_PAIRS = {(a, b) for a in range(P) for b in range(1, P)}  # division: b in 1..p-1, 42 pairs
ZERO_DIV = {(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6)}  # 0/b = 0
DIV_ONE = {(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)}  # a/1 = a
SELF_DIV = {(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)}  # a/a = 1
REST = ALL_PAIRS - ZERO_DIV - DIV_ONE - SELF_DIV


def division_data(p: int = P) -> tuple[torch.Tensor, torch.Tensor]:
    """Every division equation of the task as inputs (N, 3) = [a, b, =] and labels (N,)."""
    task = ModularArithmetic(ModularConfig(p=p, op="div", train_frac=0.5))
    a, b = task.pairs()
    return torch.stack([a, b, torch.full_like(a, p)], dim=1), OPS["div"](a, b, p)


class Rule(nn.Module):
    """Logits (B, p) that put all the mass on rule(a, b): a model whose predictions are known."""

    def __init__(self, p: int, rule) -> None:
        super().__init__()
        self.p, self.rule = p, rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = self.rule(x[:, 0], x[:, 1]) % self.p
        return 8.0 * nn.functional.one_hot(pred, self.p).float()


def context(model: nn.Module, x: torch.Tensor, y: torch.Tensor, overrides: tuple[str, ...] = ()) -> EvalContext:
    cfg = resolve_config(None, [f"task.p={P}", "task.op=div", *overrides])
    data = TaskData(x[:0], y[:0], x, y)  # every equation in the test set
    spec = ModularArithmetic(cfg.task).spec
    return EvalContext(step=0, model=model, data=data, spec=spec, cfg=cfg)


def test_subsets_of_division_mod_7_by_hand():
    x, y = division_data()
    pairs = [(int(a), int(b)) for a, b in x[:, :2]]
    assert set(pairs) == ALL_PAIRS and len(pairs) == 42
    masks = subset_masks(x[:, 0], x[:, 1])
    assert tuple(masks) == SUBSETS
    got = {name: {pq for pq, m in zip(pairs, mask.tolist(), strict=True) if m} for name, mask in masks.items()}
    assert got == {"zero_div": ZERO_DIV, "div_one": DIV_ONE, "self_div": SELF_DIV, "rest": REST}
    overlaps = (ZERO_DIV & DIV_ONE, DIV_ONE & SELF_DIV, ZERO_DIV & SELF_DIV)
    assert overlaps == ({(0, 1)}, {(1, 1)}, set())
    assert len(REST) == 42 - (3 * P - 4) == 25
    label = dict(zip(pairs, y.tolist(), strict=True))
    assert all(label[pq] == 0 for pq in ZERO_DIV)
    assert all(label[(a, b)] == a for a, b in DIV_ONE)
    assert all(label[pq] == 1 for pq in SELF_DIV)
    assert label[(3, 2)] == 5 and label[(1, 3)] == 5 and label[(6, 4)] == 5  # 2·5 = 10 ≡ 3, 3·5 = 15 ≡ 1, 4·5 = 20 ≡ 6
    assert all(b * c % P == a for (a, b), c in label.items())  # a = b·c mod p


@pytest.mark.parametrize(
    "name,rule,acc,correct",
    [
        # always 0: every 0/b right, and the a/1 one whose answer is 0 (0/1)
        ("zero", lambda a, b: torch.zeros_like(a), {"zero_div": 1.0, "div_one": 1 / 7, "self_div": 0.0, "rest": 0.0}, 6),
        # copy a: right on 0/b (a = 0 = answer) and a/1, on a/a only for 1/1
        ("copy_a", lambda a, b: a, {"zero_div": 1.0, "div_one": 1.0, "self_div": 1 / 6, "rest": 0.0}, 12),
        # always 1: right on a/a, and on 1/1 among a/1
        ("one", lambda a, b: torch.ones_like(a), {"zero_div": 0.0, "div_one": 1 / 7, "self_div": 1.0, "rest": 0.0}, 6),
        # the true answer a · b^(p-2): all right
        ("truth", lambda a, b: a * b.pow(P - 2) % P, {"zero_div": 1.0, "div_one": 1.0, "self_div": 1.0, "rest": 1.0}, 42),
    ],
)
def test_a_model_with_known_predictions_gives_exact_accuracies(name, rule, acc, correct):
    x, y = division_data()
    out = MEASURES.get("division_subsets")().compute(context(Rule(P, rule), x, y))
    assert {k: out[f"test_acc/{k}"] for k in SUBSETS} == pytest.approx(acc, abs=1e-12)
    assert out["test_correct"] == correct
    assert out["test_chance_correct"] == 42 / 7 == 6
    assert out["test_pred_zero"] == pytest.approx({"zero": 1.0, "copy_a": 6 / 42, "one": 0.0, "truth": 6 / 42}[name])


def test_the_pass_shared_with_loss_acc_gives_identical_numbers_in_any_chunking():
    x, y = division_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(P + 1, 8), nn.Flatten(), nn.Linear(24, P))  # a random model: mixed predictions
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        whole = measure_all(context(model, x, y), [MEASURES.get("division_subsets")(), MEASURES.get("loss_acc")()])
    finally:
        handle.remove()
    assert len(calls) == 1  # one pass over the test set for both (the train set here is empty: a pass of no rows)
    assert (whole["test_loss"], whole["test_acc"]) == tuple(t.item() for t in loss_and_accuracy(model, x, y, "ce"))  # loss_acc alone
    assert 0 < whole["test_correct"] < len(y)
    assert whole["test_correct"] == round(whole["test_acc"] * len(y))
    preds = model(x).argmax(-1)
    for k, mask in subset_masks(x[:, 0], x[:, 1]).items():
        assert whole[f"test_acc/{k}"] == pytest.approx((preds[mask] == y[mask]).double().mean().item(), abs=1e-15)
    chunked = measure_all(
        context(model, x, y, ("schedule.eval_batch_size=5",)), [MEASURES.get("division_subsets")(), MEASURES.get("loss_acc")()]
    )
    assert {k: v for k, v in chunked.items() if k.startswith("test") and "loss" not in k} == {
        k: v for k, v in whole.items() if k.startswith("test") and "loss" not in k
    }
    assert chunked["test_loss"] == pytest.approx(whole["test_loss"])
    known = context(model, x, y)
    known.known.update(test_loss=123.0, test_acc=0.5)  # loss_acc's numbers already known (an ensemble): left alone
    again = measure_all(known, [MEASURES.get("division_subsets")(), MEASURES.get("loss_acc")()])
    assert again["test_loss"] == 123.0 and {k: v for k, v in again.items() if "/" in k} == {k: v for k, v in whole.items() if "/" in k}


def test_an_empty_subset_is_left_out_not_nan():
    x, y = division_data()
    keep = x[:, 0] != 0  # no 0/b equation in this test set
    out = division_subset_metrics(Rule(P, lambda a, b: a)(x[keep]).argmax(-1), x[keep], y[keep], P)
    assert "test_acc/zero_div" not in out
    # copy a is right on a/1 only (1/1 included), and 0/1 is gone: 6 of 36
    assert out["test_acc/div_one"] == 1.0 and out["test_correct"] == 6 and out["test_chance_correct"] == 36 / 7
    assert all(math.isfinite(v) for v in out.values())


def test_not_applicable_outside_division():
    cls = MEASURES.get("division_subsets")
    model = nn.Linear(1, 1)
    assert cls.not_applicable(model, ModularArithmetic(ModularConfig(p=P, op="div")).spec) is None
    for op in ("add", "mul", "x2y2"):
        why = cls.not_applicable(model, ModularArithmetic(ModularConfig(p=P, op=op)).spec)
        assert why is not None and "task.op=div" in why and f"task.op={op}" in why
    assert "task.op=div" in cls.not_applicable(model, TaskSpec(n_classes=10, input_dim=784))


def test_enabling_it_on_addition_is_one_line_exit_2_and_writes_nothing(capsys, tiny, runs_dir):
    code = main(["run", *tiny, "task.op=add", "measures.enabled=[loss_acc,division_subsets]", "--runs-dir", str(runs_dir)])
    _out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groklab: error: measures.enabled")
    assert "division_subsets" in lines[0] and "task.op=div" in lines[0] and "task.op=add" in lines[0]
    assert not runs_dir.exists()


def test_a_real_division_run_stores_the_subset_metrics(capsys, runs_dir):
    args = [
        "run",
        "davies2023",
        "task.p=7",
        "model.d_model=16",
        "model.d_mlp=32",
        "schedule.steps=30",
        "schedule.eval_every=10",
        "schedule.eval_dense_until=30",
        "schedule.checkpoint_every=30",
        "measures.enabled=[loss_acc,division_subsets]",
        "run.device=cpu",
        "--quiet",
        "--runs-dir",
        str(runs_dir),
    ]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    with Store(runs_dir, create=False) as store:
        m = store.metrics(out.strip())
    steps = m["test_acc"][0]
    assert steps == [0, 10, 20, 30]
    x, _ = division_data()
    task = ModularArithmetic(ModularConfig(p=7, op="div", train_frac=0.5))
    _train, test = task.split_indices(x[:, 0], x[:, 1])
    n_test = len(test)
    masks = subset_masks(x[test, 0], x[test, 1])
    for k, mask in masks.items():  # a subset with no test equation is not logged
        assert (f"test_acc/{k}" in m) == bool(mask.any())
        if mask.any():
            assert m[f"test_acc/{k}"][0] == steps and all(0 <= v <= 1 for v in m[f"test_acc/{k}"][1])
    assert m["test_chance_correct"][1] == [n_test / 7] * 4
    for correct, acc in zip(m["test_correct"][1], m["test_acc"][1], strict=True):  # the count and loss_acc's accuracy agree
        assert correct == round(correct) and correct == pytest.approx(acc * n_test)
