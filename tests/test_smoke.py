"""Every recipe's smoke scale, end to end: the paper's plan (every sweep, every point, one seed), each run a handful
of steps, judged, drawn and written, so that a change that breaks a full version fails here, not ten hours into a
GPU job. The MNIST recipes read the real files where they are, else IDX files of MNIST's sizes with random pixels
(the checksums then cannot pass, so they are skipped for those)."""

from __future__ import annotations

import functools
import json

import pytest

from groklab.cli.main import main
from groklab.data import mnist
from groklab.reproductions import RECIPES
from groklab.reproductions.claim import SMOKE_STEPS, Setting
from groklab.reproductions.runner import plan
from groklab.store import Store
from test_mnist import REAL, write_fake_mnist

MNIST_RECIPES = {"deep-grokking", "omnigrok"}


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    """The real MNIST files, or random ones of their sizes."""
    if REAL is not None:
        return REAL, True
    where = tmp_path_factory.mktemp("mnist")
    write_fake_mnist(where, n_train=60_000, n_test=10_000, gz=False)
    return where, False


@pytest.mark.parametrize("paper", list(RECIPES))
def test_the_smoke_scale_runs_the_papers_plan_end_to_end(paper, tmp_path, capsys, monkeypatch, mnist_dir):
    if paper in MNIST_RECIPES:
        where, real = mnist_dir
        monkeypatch.setenv("GROKLAB_DATA", str(where))
        if not real:
            monkeypatch.setattr(mnist, "load", functools.partial(mnist.load, verify=False))
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert main(["reproduce", paper, "--scale", "smoke", "-q", "--runs-dir", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    recipe = RECIPES.get(paper)
    planned = plan(recipe, Setting("smoke", 1), list(recipe.claims))

    saved = json.loads((out / "claims.json").read_text())
    assert saved["scale"] == "smoke" and saved["seeds"] == 1 and saved["paper"] == paper
    assert saved["wall_clock_s"] > 0 and saved["device"].startswith("cpu") and "commit" in saved
    assert {r["name"] for r in saved["claims"]} == {c.name for c in recipe.claims}  # every claim judged
    assert all(r["result"] == "n/a" and r["measured"].startswith("smoke scale") for r in saved["claims"])  # and none decided
    assert f"0 PASS, 0 FAIL, {len(saved['claims'])} n/a" in printed

    with Store(runs, create=False) as store:  # every sweep of the paper's plan, each point one finished run of SMOKE_STEPS
        sweeps = {sw.name: sw for sw in store.sweeps()}
        assert set(sweeps) == {p.spec.name for p in planned.values()} and all(n.endswith("-smoke") for n in sweeps)
        assert set(saved["sweeps"].values()) == {sw.id for sw in sweeps.values()}
        for p in planned.values():
            linked = store.sweep_runs(sweeps[p.spec.name].id)
            assert len(linked) == len(p.spec.points()) == len(sweeps[p.spec.name].points)
            for run_id in linked.values():
                assert store.get(run_id).status == "finished"
                assert store.metrics(run_id)["train_loss"][0][-1] == SMOKE_STEPS
    assert (out / "report.html").stat().st_size > 0
    if recipe.figures is not None:
        assert any(p.suffix == ".png" and p.stat().st_size > 0 for p in out.iterdir())
