"""A reproduction's arms side by side: one panel per metric, one colour per arm, one line per seed, over
steps on a log axis (the figures of `groklab reproduce numerical-stability` and `omnigrok`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from groklab.plots.canvas import subplots
from groklab.plots.run_figure import _log_x, save_figure

Curves = dict[str, tuple[list[int], list[float]]]
SHARES = ("acc", "sc_")  # metrics read as shares in [0, 1]: their panels share that range


def plot_arms(arms: dict[str, list[Curves]], panels: list[tuple[str, str]], output: str | Path) -> Path:
    """`arms`: each arm's runs' metrics; `panels`: (metric, title) per panel."""
    fig, axes = subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), constrained_layout=True, squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (arm, runs) in enumerate(arms.items()):
        for j, m in enumerate(runs):
            for ax, (name, _title) in zip(axes[0], panels, strict=True):
                if name in m:
                    steps, values = m[name]
                    label = arm if j == 0 else None
                    ax.plot(_log_x(steps), values, color=colors[i % len(colors)], lw=1.2, alpha=0.8, label=label)
    for ax, (name, title) in zip(axes[0], panels, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("step (step 0 drawn at 0.5)")
        if any(tag in name for tag in SHARES):
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, Path(output))
