"""Training objectives and a model's loss and accuracy on a set: below the measures and the trainer, which both use them."""

from groklab.losses.evaluate import EVAL_CHUNK, eval_chunk, loss_and_accuracy
from groklab.losses.objective import LOSS_DTYPES, LOSS_NAMES, correct_count, example_losses, loss_input, mean_loss

__all__ = [
    "EVAL_CHUNK",
    "LOSS_DTYPES",
    "LOSS_NAMES",
    "correct_count",
    "eval_chunk",
    "example_losses",
    "loss_and_accuracy",
    "loss_input",
    "mean_loss",
]
