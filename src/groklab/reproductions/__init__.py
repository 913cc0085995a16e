"""One-command reproductions of the papers groklab is built around: each trains its sweeps, draws the
figures and checks the paper's claims."""

from groklab.reproductions import (
    deep_grokking,
    double_descent,
    fourier_circuits,
    grokfast,
    numerical_stability,
    omnigrok,
    progress_measures,
)

RECIPES = {
    "deep-grokking": deep_grokking,
    "progress-measures": progress_measures,
    "double-descent": double_descent,
    "fourier-circuits": fourier_circuits,
    "numerical-stability": numerical_stability,
    "omnigrok": omnigrok,
    "grokfast": grokfast,
}

__all__ = ["RECIPES"]
