"""Models: plain torch.nn.Modules, each registered in MODELS with its config keys."""

from groklab.models import deep_mlp, mlp, resnet, transformer  # noqa: F401  (register "deep_mlp", "mlp", "resnet18", "transformer")
from groklab.models.base import MODELS, build_model, scale_parameters, train_mode_differs
from groklab.models.deep_mlp import DeepMLP
from groklab.models.mlp import EmbeddingMLP
from groklab.models.resnet import ResNet18
from groklab.models.transformer import Transformer, TransformerShape

__all__ = [
    "MODELS",
    "DeepMLP",
    "EmbeddingMLP",
    "ResNet18",
    "Transformer",
    "TransformerShape",
    "build_model",
    "scale_parameters",
    "train_mode_differs",
]
