"""One-command reproductions of the papers groklab is built around: each a registered `Recipe` of `Claim`s that
the runner trains, judges and draws, alone or together, at the smoke, quick or paper scale."""

from groklab.reproductions import (  # noqa: F401  (each module registers its recipe)
    deep_grokking,
    double_descent,
    fourier_circuits,
    grokfast,
    numerical_stability,
    omnigrok,
    progress_measures,
)
from groklab.reproductions.claim import RECIPES, SCALES, Claim, Need, Recipe, Setting, format_table

__all__ = ["RECIPES", "SCALES", "Claim", "Need", "Recipe", "Setting", "format_table"]
