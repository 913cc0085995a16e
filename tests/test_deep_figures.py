"""Deep-grokking figures drawn from a store of synthetic runs: files written, stages and labels drawn
(read back from the SVG text), and one-line errors for missing metrics and unknown formats."""

from __future__ import annotations

import math
import re

import pytest

from groklab.errors import GroklabError
from groklab.plots.deep_figures import plot_probes, plot_rank_heatmap, plot_rank_vs_norm, plot_stages
from groklab.store import Store

PNG = b"\x89PNG\r\n\x1a\n"
DEPTH = 4


def steps() -> list[int]:
    """Dense early, log-spaced later (20 per decade), as the trainer evaluates."""
    out = list(range(0, 1000, 50))
    out += [round(1000 * 10 ** (k / 20)) for k in range(0, 61)]
    return out


def sig(t: int, mid: float, width: float) -> float:
    return 0.5 * (1 + math.tanh((math.log10(max(t, 1)) - math.log10(mid)) / width / 2))


def make_run(
    store: Store, n_train: int = 1000, metrics: tuple[str, ...] = ("acc", "norm", "rank", "probe"), events: dict | None = None
) -> str:
    """A run whose test accuracy generalizes in two stages (around steps 3e3 and 2e5)."""
    config = {"task": {"name": "mnist", "n_train": n_train}, **({"events": events} if events else {})}
    rid = store.create_run(config, f"deep-{n_train}", "test", "0", "cpu")
    for t in steps():
        acc = 0.1 + 0.5 * sig(t, 3_000, 0.05) + 0.35 * sig(t, 200_000, 0.08)
        row: dict[str, float] = {}
        if "acc" in metrics:
            row |= {"train_acc": min(1.0, 0.1 + sig(t, 500, 0.1)), "test_acc": acc}
        if "norm" in metrics:
            row["weight_norm"] = 50 - 30 * sig(t, 10_000, 0.3) + n_train / 1000
        if "rank" in metrics:
            for i in range(1, DEPTH + 1):
                row[f"rank/L{i}"] = round(100 - 60 * sig(t, 3_000, 0.05) + 40 * sig(t, 30_000, 0.05) - 70 * sig(t, 200_000, 0.08)) / i
        if "probe" in metrics:
            for i in range(1, DEPTH + 1):
                row[f"probe_acc/L{i}"] = 0.85 + 0.1 * sig(t, 10_000 * i, 0.2)
        store.log_metrics(rid, t, row)
    return rid


def svg_text(path) -> list[str]:
    """The strings matplotlib drew: its SVG writer puts each one in a comment beside the glyphs."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("runs")) as s:
        yield s


@pytest.fixture(scope="module")
def run(store):
    return make_run(store)


def test_stages_figure_marks_both_stages(store, run, tmp_path):
    out = plot_stages(store, run, tmp_path / "stages.png")
    assert out == tmp_path / "stages.png" and out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    texts = svg_text(plot_stages(store, run, tmp_path / "stages.svg"))
    assert "stage 1" in texts and "stage 2" in texts and "stage 3" not in texts
    assert any("2 generalization stages" in t for t in texts)


def test_stages_figure_uses_the_runs_own_thresholds(store, tmp_path):
    rid = make_run(store, events={"surge_rise": 0.4, "surge_window": 10})  # the second stage gains only 0.35
    texts = svg_text(plot_stages(store, rid, tmp_path / "one.svg"))
    assert "stage 1" in texts and "stage 2" not in texts


def test_stages_figure_default_path_is_the_run_folder(store, run):
    out = plot_stages(store, run)
    assert out == store.run_dir(run) / "stages.png" and out.read_bytes().startswith(PNG)


def test_rank_heatmap(store, run, tmp_path):
    out = plot_rank_heatmap(store, run, tmp_path / "heat.png")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    texts = svg_text(plot_rank_heatmap(store, run, tmp_path / "heat.svg"))
    assert {f"L{i}" for i in range(1, DEPTH + 1)} <= set(texts)
    assert "feature rank" in texts and "test accuracy" in texts
    assert "0" in texts and str(steps()[-1]) in texts  # first and last evaluation label the columns


def test_rank_vs_norm_compares_runs(store, run, tmp_path):
    small = make_run(store, n_train=500)
    out = plot_rank_vs_norm(store, [run, small], tmp_path / "cmp.png")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    texts = svg_text(plot_rank_vs_norm(store, [run, small], tmp_path / "cmp.svg"))
    assert texts.count("n_train=500") == 2 and texts.count("n_train=1000") == 2  # one legend entry per panel
    assert f"feature rank of layer L{DEPTH - 1}" in texts and "weight norm" in texts
    texts = svg_text(plot_rank_vs_norm(store, [run, small], tmp_path / "cmp1.svg", layer=1))
    assert "feature rank of layer L1" in texts


def test_rank_vs_norm_labels_runs_without_n_train_by_name(store, tmp_path):
    rid = store.create_run({"task": {"p": 5}}, "named-run", "test", "0", "cpu")
    for t in (0, 10, 100):
        store.log_metrics(rid, t, {"weight_norm": 10.0 - t / 100, "rank/L1": 5.0, "rank/L2": 3.0})
    texts = svg_text(plot_rank_vs_norm(store, [rid], tmp_path / "named.svg"))
    assert "named-run" in texts and "feature rank of layer L1" in texts


def test_probes(store, run, tmp_path):
    out = plot_probes(store, run, tmp_path / "probes.png")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    texts = svg_text(plot_probes(store, run, tmp_path / "probes.svg"))
    assert {f"probe L{i}" for i in range(1, DEPTH + 1)} <= set(texts) and "model test acc" in texts


def test_missing_metrics_are_one_line_errors(store, run, tmp_path):
    bare = make_run(store, metrics=("acc",))
    no_acc = make_run(store, metrics=("norm", "rank", "probe"))
    cases = [
        (lambda: plot_stages(store, no_acc, tmp_path / "a.png"), "no test_acc"),
        (lambda: plot_rank_heatmap(store, bare, tmp_path / "b.png"), "no feature-rank metrics"),
        (lambda: plot_probes(store, bare, tmp_path / "c.png"), "no linear-probe metrics"),
        (lambda: plot_rank_vs_norm(store, [run, bare], tmp_path / "d.png"), "no weight_norm"),
        (lambda: plot_rank_vs_norm(store, [run], tmp_path / "e.png", layer=DEPTH + 5), f"no rank/L{DEPTH + 5}"),
        (lambda: plot_rank_vs_norm(store, [], tmp_path / "f.png"), "no runs"),
    ]
    for call, message in cases:
        with pytest.raises(GroklabError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".jpg", ""])
def test_unknown_formats_are_refused(store, run, tmp_path, suffix):
    calls = [
        lambda p: plot_stages(store, run, p),
        lambda p: plot_rank_heatmap(store, run, p),
        lambda p: plot_probes(store, run, p),
        lambda p: plot_rank_vs_norm(store, [run], p),
    ]
    for call in calls:
        with pytest.raises(GroklabError, match="unknown figure format"):
            call(tmp_path / f"figure{suffix}")
    assert list(tmp_path.iterdir()) == []
