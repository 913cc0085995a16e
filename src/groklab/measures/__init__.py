"""Progress measures: each module registers one Measure in MEASURES."""

from groklab.measures import division_subsets, feature_rank, fourier, loss_acc, med, probe, uniformity, weight_norm  # noqa: F401  (register the measures)
from groklab.measures.base import MEASURES, EvalContext, Measure

__all__ = ["MEASURES", "EvalContext", "Measure"]
