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

One forward pass over the test set (in chunks of schedule.eval_batch_size) gives all of these, and also the
test loss and accuracy, which it leaves in the evaluation cache for loss_acc (bit-identical to loss_acc's own
pass, so that measure need not run the test set again).
"""

from __future__ import annotations

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.loss_acc import eval_chunk, evaluate
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


@MEASURES.register("division_subsets")
class DivisionSubsets(Measure):
    name = "division_subsets"
    fills_cache = True  # its test pass also yields test_loss/test_acc for loss_acc
    summary = (
        "a / b mod p only: test_acc/zero_div (0/b), test_acc/div_one (a/1), test_acc/self_div (a/a), test_acc/rest, "
        "test_correct, test_chance_correct (n_test / p), test_pred_zero (Davies et al. 2023)"
    )

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if spec.operation != "div":
            got = f"task.op={spec.operation}" if spec.operation else "a task without task.op"
            return f"division subsets need task.name=modular with task.op=div, got {got}"
        return None

    @torch.no_grad()
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        x, y = ctx.data.test_x, ctx.data.test_y
        preds: list[torch.Tensor] = []

        def forward(chunk: torch.Tensor) -> torch.Tensor:
            logits = ctx.model(chunk)
            preds.append(logits.argmax(dim=-1))
            return logits

        chunk = eval_chunk(ctx.cfg)
        if "test_loss" in ctx.cache:  # loss_acc's numbers are known (an ensemble's vectorized pass): predictions only
            for i in range(0, len(y), chunk):
                forward(x[i : i + chunk])
        else:
            ctx.cache["test_loss"], ctx.cache["test_acc"] = evaluate(ctx.model, x, y, ctx.cfg.optim.loss, forward=forward, chunk=chunk)
        predictions = torch.cat(preds) if preds else y.new_empty(0)
        return division_subset_metrics(predictions, x, y, ctx.spec.n_operand_tokens, ctx.spec.operand_positions)
