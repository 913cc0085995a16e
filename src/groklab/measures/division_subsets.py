"""Test accuracy of modular division on the subsets Davies et al. (2023) track, and the count of correct answers.

Division is a / b = c with a = b·c mod p and b in 1..p-1 (tasks/modular.py), so the answer is
c = a · b⁻¹. Three kinds of equation have an answer a shortcut gets right without learning b⁻¹:

- ``zero_div``, 0/b (a = 0): the answer is 0 (the paper code's ``0_div``);
- ``div_one``, a/1 (b = 1): the answer is a (``div_1``);
- ``self_div``, a/a (a = b): the answer is 1 (``a_eq_b``);
- ``rest``: every other equation, none of the three.

The first three overlap as in the paper's code, where each is its own mask: 0/1 is in both zero_div and
div_one, and 1/1 in both div_one and self_div (zero_div and self_div are disjoint, since b ≠ 0). Over all
p(p-1) pairs they hold p-1, p and p-1 pairs, 3p-4 together; which of them land in the test set depends on
the split. A subset with no test pair has no accuracy: its key is left out of the logged metrics (the split
is fixed, so it is absent at every evaluation) rather than logged as NaN, which the store keeps as NULL.

``test_correct`` is the number of test equations answered right and ``test_chance_correct`` its value at
chance, n_test / p (Davies et al. Fig. 7: early in training the count rises to about 0/b's test pairs plus
chance, 96 at p = 97 with half the pairs in test, then falls below chance as memorisation sets in).
``test_pred_zero`` is the share of test predictions that are 0 (the paper code's "Percent Zero Prediction").

All of these come from the test set's predictions, read from the evaluation's test pass (measures/passes.py),
the one that also gives loss_acc its test loss and accuracy: the test set goes through the model once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import LOGITS, Tap
from groklab.tasks.base import TaskSpec

SUBSETS = ("zero_div", "div_one", "self_div", "rest")


def subset_masks(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks of the division subsets over operand pairs (a, b): zero_div (a = 0), div_one (b = 1),
    self_div (a = b) and rest (none of the three). The first three overlap (0/1, 1/1); rest is disjoint from them."""
    zero_div, div_one, self_div = a == 0, b == 1, a == b
    return {"zero_div": zero_div, "div_one": div_one, "self_div": self_div, "rest": ~(zero_div | div_one | self_div)}


@torch.no_grad()
def division_subset_metrics(
    predictions: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: int, operands: tuple[int, ...] = (0, 1)
) -> dict[str, float]:
    """The measure's metrics from argmax predictions (N,), input sequences x (N, T) with a and b at positions
    `operands`, and labels y (N,).

    test_acc/<subset> for each non-empty subset, test_correct, test_chance_correct = N / p, test_pred_zero."""
    right = predictions == y
    masks = subset_masks(x[:, operands[0]], x[:, operands[1]])
    stacked = torch.stack(list(masks.values()))  # (4, N)
    # one host transfer: per subset (correct, size), then the total correct and the zero predictions
    counts = torch.cat([(stacked & right).sum(dim=1), stacked.sum(dim=1), right.sum().view(1), (predictions == 0).sum().view(1)])
    c = counts.tolist()
    n_sub = len(masks)
    out = {f"test_acc/{name}": c[i] / c[n_sub + i] for i, name in enumerate(masks) if c[n_sub + i] > 0}
    n = len(y)
    out["test_correct"] = float(c[2 * n_sub])
    out["test_chance_correct"] = n / p
    out["test_pred_zero"] = c[2 * n_sub + 1] / n if n else 0.0
    return out


@MEASURES.register(
    "division_subsets",
    summary=(
        "a / b mod p only: test_acc/zero_div (0/b), test_acc/div_one (a/1), test_acc/self_div (a/a), test_acc/rest, "
        "test_correct, test_chance_correct (n_test / p), test_pred_zero (Davies et al. 2023)"
    ),
)
class DivisionSubsets(Measure):
    name = "division_subsets"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if spec.operation != "div":
            got = f"task.op={spec.operation}" if spec.operation else "a task without task.op"
            return f"division subsets need task.name=modular with task.op=div, got {got}"
        return None

    def taps(self, ctx: EvalContext) -> list[Tap]:
        """The test set's predictions: the logits of loss_acc's test pass, or a pass of its own where the
        trainer knew the test loss already (an ensemble's vectorized evaluation)."""
        return [Tap("test", (LOGITS,), Predictions())]

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        (tap,) = taps or ctx.run(self.taps(ctx))
        assert isinstance(tap.sink, Predictions)
        x, y = ctx.data.test_x, ctx.data.test_y
        predictions = torch.cat(tap.sink.chunks) if tap.sink.chunks else y.new_empty(0)
        return division_subset_metrics(predictions, x, y, ctx.spec.n_operand_tokens, ctx.spec.operand_positions)


class Predictions:
    """A tap's sink: argmax predictions, chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[torch.Tensor] = []

    def __call__(self, name: str, logits: torch.Tensor) -> None:
        self.chunks.append(logits.argmax(dim=-1))
