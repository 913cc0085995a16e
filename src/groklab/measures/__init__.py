"""Progress measures: each module registers one Measure in MEASURES."""

from groklab.measures import (  # noqa: F401  (register the measures)
    division_subsets,
    feature_rank,
    fourier,
    fourier_circuit,
    loss_acc,
    med,
    nlm_alignment,
    probe,
    softmax_collapse,
    uniformity,
    weight_norm,
)
from groklab.measures.base import MEASURES, EvalContext, Measure, measure_all
from groklab.measures.passes import LOGITS, Tap

__all__ = ["LOGITS", "MEASURES", "EvalContext", "Measure", "Tap", "measure_all"]
