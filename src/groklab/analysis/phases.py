"""The four phases of learning (Liu et al. 2022, "Towards understanding grokking: an effective theory of
representation learning"), read off one run's stored events:

  comprehension  fits and generalizes together: t_grok - t_fit <= delay
  grokking       generalizes long after fitting: t_grok - t_fit > delay
  memorization   fits (t_fit) and never generalizes (no t_grok)
  confusion      never fits the training set (no t_fit)

t_fit and t_grok are the first evaluations at which the train and test accuracies reach
events.fit_threshold and events.grok_threshold. A cell of a phase diagram holds several seeds; its phase
is the one most of them are in (ties go to the earlier phase in PHASES).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

PHASES = ("comprehension", "grokking", "memorization", "confusion")


def phase_of(t_fit: int | None, t_grok: int | None, delay: int) -> str:
    """One run's phase from its events; `delay` (steps) separates comprehension from grokking."""
    if t_fit is None:
        return "confusion" if t_grok is None else "comprehension"  # generalized without fitting first: no delay at all
    if t_grok is None:
        return "memorization"
    return "grokking" if t_grok - t_fit > delay else "comprehension"


def cell_phase(phases: Sequence[str]) -> str:
    """The phase most of a cell's seeds are in; ties go to the phase listed first in PHASES."""
    counts = Counter(phases)
    return max(PHASES, key=lambda p: (counts[p], -PHASES.index(p)))
