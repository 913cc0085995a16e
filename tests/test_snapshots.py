"""Weight snapshots at log-spaced steps: the model at any kept step, its export, and TransformerLens's layout."""

from __future__ import annotations

import warnings

import pytest
import torch

import groklab
from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.errors import GroklabError
from groklab.models import Transformer, TransformerShape, build_model
from groklab.models.transformerlens import transformerlens_export
from groklab.store import Store
from groklab.tasks import build_task
from groklab.training.runs import start_ensemble
from groklab.training.schedule import snapshot_steps
from groklab.training.setup import prepare
from helpers import TINY

SNAP = [*TINY, "schedule.snapshot_per_decade=3"]  # 60 steps: snapshots at 0, 1, 2, 5, 10, 22, 46, 60


def test_snapshot_steps_are_log_spaced_with_both_ends():
    s = resolve_config(None, ["schedule.steps=1000", "schedule.snapshot_per_decade=2"]).schedule
    assert snapshot_steps(s) == {0, 1, 3, 10, 32, 100, 316, 1000}
    assert snapshot_steps(resolve_config(None, ["schedule.steps=1000"]).schedule) == set()


def fresh_logits(run: groklab.Run, state: dict) -> torch.Tensor:
    cfg = run.config
    model = build_model(cfg.model, build_task(cfg.task).spec)
    model.load_state_dict(state)
    data = build_task(cfg.task).build()
    with torch.no_grad():
        return model.eval()(data.test_x)


def test_a_snapshot_reloads_to_the_logits_of_the_run_at_that_step(tmp_path):
    run = groklab.run(None, SNAP, runs_dir=tmp_path / "a")
    assert run.steps_with_weights() == sorted(snapshot_steps(run.config.schedule)) == [0, 1, 2, 5, 10, 22, 46, 60]
    x = build_task(run.config.task).build().test_x
    short = groklab.run(None, [*SNAP, "schedule.steps=22"], runs_dir=tmp_path / "b")  # the same run stopped at 22
    with torch.no_grad():
        last = run.model()(x)
        assert torch.equal(last, fresh_logits(run, run.store.load_checkpoint(run.id)["model"]))  # the final checkpoint's weights
        assert torch.equal(run.model(22)(x), fresh_logits(short, short.store.load_checkpoint(short.id)["model"]))
        assert not torch.equal(run.model(22)(x), last)


def test_a_missing_step_names_the_nearest_and_a_run_without_snapshots_says_how(tmp_path):
    run = groklab.run(None, SNAP, runs_dir=tmp_path)
    with pytest.raises(GroklabError, match="no weights at step 20; the nearest snapshot is step 22"):
        run.model(20)
    plain = groklab.run(None, TINY, runs_dir=tmp_path)
    with pytest.raises(GroklabError, match=r"schedule\.snapshot_per_decade"):
        plain.model()


def test_ensemble_members_keep_their_own_snapshots(tmp_path):
    widths = [["model.d_model=16", "model.d_mlp=32", "model.n_heads=2"], ["model.d_model=32", "model.d_mlp=64", "run.seed=1"]]
    preps = [prepare(resolve_config(None, [*SNAP, *w])) for w in widths]
    store = Store(tmp_path)
    run_ids, _ = start_ensemble(preps, store)  # padded: the members' own narrow shapes are kept
    for rid, prep in zip(run_ids, preps, strict=True):
        run = groklab.open_run(rid, tmp_path)
        assert run.steps_with_weights() == [0, 1, 2, 5, 10, 22, 46, 60]
        final = store.load_checkpoint(rid)["model"]
        assert all(torch.equal(run.model().state_dict()[n], final[n]) for n in final)
        assert run.model().tok_emb.weight.shape[1] == prep.model.shape.d_model


def test_export_writes_the_snapshot_and_refuses_what_it_cannot(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    run = groklab.run(None, SNAP, runs_dir=runs)
    out = tmp_path / "w.pt"
    assert main(["export", run.id, "--weights", "22", "-o", str(out), "--runs-dir", runs]) == 0
    saved = torch.load(out, weights_only=True)
    assert all(torch.equal(saved[n], t) for n, t in run.model(22).state_dict().items())
    capsys.readouterr()
    assert main(["export", run.id, "--weights", "21", "--runs-dir", runs]) == 2
    assert "nearest snapshot is step 22" in capsys.readouterr().err
    assert main(["export", run.id, "--transformerlens", "--runs-dir", runs]) == 2
    mlp_cfg = [*SNAP[:2], "model.name=mlp", "schedule.steps=5", "schedule.snapshot_per_decade=1", "run.device=cpu"]
    mlp = groklab.run(None, mlp_cfg, runs_dir=runs)
    assert main(["export", mlp.id, "--weights", "5", "--transformerlens", "--runs-dir", runs]) == 2
    assert "converts transformers only" in capsys.readouterr().err


@pytest.mark.parametrize("norm", ["none", "pre"])
def test_the_transformerlens_export_gives_its_logits(norm):
    """Loaded into TransformerLens's own HookedTransformer (the `tl` extra), the export computes our logits."""
    tl = pytest.importorskip("transformer_lens")
    torch.manual_seed(0)
    shape = TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=2, d_mlp=32, n_layers=2, norm=norm)
    model = Transformer(shape).double().eval()
    export = transformerlens_export(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hooked = tl.HookedTransformer(tl.HookedTransformerConfig(**export["cfg"], dtype=torch.float64, device="cpu"))
    missing, unexpected = hooked.load_state_dict(export["state_dict"], strict=False)
    assert unexpected == [] and all(n.endswith((".mask", ".IGNORE")) for n in missing)  # only its attention buffers
    idx = torch.randint(0, 14, (30, 3))
    with torch.no_grad():
        torch.testing.assert_close(hooked(idx)[:, -1], model(idx), rtol=1e-12, atol=1e-12)


def test_the_transformerlens_export_refuses_what_it_cannot_express():
    shape = TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=2, d_mlp=32, norm="post", pos="sinusoidal")
    with pytest.raises(GroklabError, match=r"model.pos=sinusoidal .*; model.norm=post"):
        transformerlens_export(Transformer(shape))
