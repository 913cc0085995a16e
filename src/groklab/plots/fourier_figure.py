"""One run through Nanda et al.'s lens: the losses with the restricted and excluded loss, and the test accuracy
with the key frequencies and the weight norm (the figure of `groklab reproduce fourier-circuits`)."""

from __future__ import annotations

from pathlib import Path

from groklab.plots.canvas import subplots
from groklab.plots.run_figure import _log_x, save_figure
from groklab.store import Store


def plot_circuit(store: Store, run_id: str, output: str | Path) -> Path:
    m = store.metrics(run_id)
    fig, (top, bottom) = subplots(2, 1, figsize=(8, 6.5), sharex=True, constrained_layout=True)
    for name, style in (
        ("train_loss", {"color": "tab:blue"}),
        ("test_loss", {"color": "tab:red"}),
        ("fourier_restricted_loss", {"color": "tab:green", "ls": "--"}),
        ("fourier_excluded_loss", {"color": "tab:purple", "ls": "--"}),
    ):
        if name in m:
            steps, values = m[name]
            top.plot(_log_x(steps), [max(v, 1e-12) for v in values], label=name, lw=1.3, **style)
    top.set_yscale("log")
    top.set_ylabel("loss")
    top.legend(fontsize=8)
    if "test_acc" in m:
        bottom.plot(_log_x(m["test_acc"][0]), m["test_acc"][1], color="tab:red", label="test_acc")
    twin = bottom.twinx()
    if "fourier_key_freqs" in m:
        twin.step(_log_x(m["fourier_key_freqs"][0]), m["fourier_key_freqs"][1], color="tab:orange", where="post", label="key frequencies")
    if "weight_norm" in m:
        steps, values = m["weight_norm"]
        top_norm = max(values) or 1.0
        bottom.plot(_log_x(steps), [v / top_norm for v in values], color="tab:gray", lw=1, label="weight norm / max")
    bottom.set_xscale("log")
    bottom.set_xlabel("step")
    bottom.set_ylabel("accuracy, relative norm")
    twin.set_ylabel("key frequencies")
    bottom.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"run {run_id}: the Fourier circuit (Nanda et al. 2023)", fontsize=10)
    return save_figure(fig, Path(output))
