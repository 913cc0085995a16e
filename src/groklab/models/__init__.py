"""Models: plain torch.nn.Modules, each registered in MODELS with its config keys."""

from groklab.models import mlp, transformer  # noqa: F401  (register "mlp", "transformer")
from groklab.models.base import MODELS, ModelEntry, build_model, scale_parameters
from groklab.models.mlp import EmbeddingMLP
from groklab.models.transformer import Transformer, TransformerShape

__all__ = ["MODELS", "EmbeddingMLP", "ModelEntry", "Transformer", "TransformerShape", "build_model", "scale_parameters"]
