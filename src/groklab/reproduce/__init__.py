"""One-command reproductions of the papers groklab is built around: each trains its sweeps, draws the
figures and checks the paper's claims."""

from groklab.reproduce import deep_grokking

RECIPES = {"deep-grokking": deep_grokking}

__all__ = ["RECIPES"]
