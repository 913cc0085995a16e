"""Prieto et al.'s picture in two panels, every arm's seeds overlaid: the test accuracy, and the share of
training examples at exactly zero loss (Softmax Collapse), over steps (the figure of
`groklab reproduce numerical-stability`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from groklab.plots.run_figure import _log_x, save_figure

Curves = dict[str, tuple[list[int], list[float]]]


def plot_stability(arms: dict[str, list[Curves]], output: str | Path) -> Path:
    """`arms`: each arm's runs' metrics; one colour per arm, one line per seed."""
    fig, (acc, sc) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (arm, runs) in enumerate(arms.items()):
        for j, m in enumerate(runs):
            label = arm if j == 0 else None
            for ax, name in ((acc, "test_acc"), (sc, "sc_zero_loss")):
                if name in m:
                    steps, values = m[name]
                    ax.plot(_log_x(steps), values, color=colors[i % len(colors)], lw=1.2, alpha=0.8, label=label)
    for ax, title in ((acc, "test accuracy"), (sc, "train examples at exactly zero loss (SC)")):
        ax.set_xscale("log")
        ax.set_xlabel("step (step 0 drawn at 0.5)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    acc.legend(fontsize=8)
    return save_figure(fig, Path(output))
