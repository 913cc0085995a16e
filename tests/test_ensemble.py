"""Vectorized ensembles: every member matches the same config trained alone."""

from __future__ import annotations

import pytest
import torch

import groklab
from groklab.api import resume
from groklab.config import resolve_config
from groklab.store import Store
from groklab.training.ensemble_keys import can_vectorize, shape_key
from groklab.training.lone import LoneBackend
from groklab.training.reporter import SilentReporter
from groklab.training.runs import start_ensemble, train_ensemble
from groklab.training.setup import prepare
from groklab.training.stacked import StackedBackend
from helpers import TINY, InterruptAt

MEMBERS = [
    ["run.seed=0"],
    ["run.seed=1", "optim.lr=0.003", "optim.weight_decay=0.1"],
    ["run.seed=2", "task.seed=5", "model.init_scale=1.5", "optim.weight_decay=2"],
]


def assert_same_rows(a, b):
    assert [(s, n) for s, n, _ in a] == [(s, n) for s, n, _ in b]
    for (s, n, va), (_, _, vb) in zip(a, b, strict=True):
        assert va == pytest.approx(vb, rel=2e-4, abs=2e-5), (s, n)


@pytest.mark.parametrize(
    "variant",
    [
        [],
        ["schedule.batch_size=16", "optim.grokfast.kind=ema"],
        ["optim.name=adam", "optim.loss=mse", "model.act=gelu"],
        ["optim.name=sgd", "optim.momentum=0.9", "optim.lr=0.05", "optim.grokfast.kind=ma", "optim.grokfast.window=4"],
        ["model.n_layers=2", "model.norm=pre", "run.dtype=float64"],
    ],
)
def test_members_match_lone_runs(tmp_path, variant):
    assert_members_match_lone_runs(tmp_path, [*TINY, *variant])


def assert_members_match_lone_runs(tmp_path, base):
    """MEMBERS on top of `base`, trained as one ensemble, each against the same config trained alone."""
    configs = [resolve_config(None, [*base, *m]) for m in MEMBERS]
    assert len({shape_key(c) for c in configs}) == 1
    store = Store(tmp_path / "ens")
    run_ids, statuses = start_ensemble([prepare(c) for c in configs], store)
    assert statuses == ["finished"] * 3
    for m, rid in zip(MEMBERS, run_ids, strict=True):
        alone = groklab.run(None, [*base, *m], runs_dir=tmp_path / "alone")
        assert_same_rows(store.metric_rows(rid), alone.store.metric_rows(alone.id))


def test_shape_key_separates_what_cannot_share_a_pass():
    base = resolve_config(None, TINY)
    assert shape_key(base) == shape_key(resolve_config(None, [*TINY, "optim.lr=0.1", "run.seed=4", "model.init_scale=2"]))
    assert shape_key(base) != shape_key(resolve_config(None, [*TINY, "model.d_model=64"]))
    assert not can_vectorize(resolve_config(None, [*TINY, "schedule.stop_test_acc=0.9"]))
    with pytest.raises(ValueError, match="shape key"):  # widths pad; depths do not
        StackedBackend([prepare(base), prepare(resolve_config(None, [*TINY, "model.n_layers=2"]))])


def test_interrupted_member_resumes_alone(tmp_path):
    configs = [resolve_config(None, [*TINY, *m]) for m in MEMBERS[:2]]

    store = Store(tmp_path / "ens")
    run_ids, statuses = start_ensemble([prepare(c) for c in configs], store, InterruptAt(33))
    assert statuses == ["interrupted", "interrupted"]
    resumed = resume(run_ids[1], tmp_path / "ens")  # the single-run trainer takes the member's checkpoint
    assert resumed.status == "finished"
    alone = groklab.run(None, [*TINY, *MEMBERS[1]], runs_dir=tmp_path / "alone")
    assert_same_rows(store.metric_rows(run_ids[1]), alone.store.metric_rows(alone.id))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_train_metrics_come_from_the_training_pass_only_without_dropout(tmp_path, dropout):
    """With dropout the full-batch training forward is a perturbed network: the train set is then evaluated apart,
    for ensembles as for lone runs, so recorded train accuracy never depends on the dropout mask."""
    cfgs = [resolve_config(None, [*TINY, f"model.dropout={dropout}", f"run.seed={s}"]) for s in range(2)]
    ens = StackedBackend([prepare(c) for c in cfgs])
    lone = LoneBackend(prepare(cfgs[0]))
    _, known = ens.train_step(record=True)
    _, [lone_known] = lone.train_step(record=True)
    if dropout:
        assert known == [{}, {}] and lone_known == {}
    else:
        assert all(set(s) == {"train_loss", "train_acc"} for s in known) and set(lone_known) == {"train_loss", "train_acc"}


MLP = [*(o for o in TINY if not o.startswith("model.")), "model.name=mlp", "model.d_model=8", "model.d_mlp=32"]


@pytest.mark.parametrize(
    "variant",
    [
        ["optim.warmup_steps=10"],
        ["model.n_layers=2", "model.act=gelu", "optim.loss=mse", "schedule.batch_size=16"],
        ["optim.name=sgd", "optim.momentum=0.9", "optim.lr=0.05", "optim.grokfast.kind=ema", "optim.warmup_steps=5"],
        ["optim.name=adam", "run.dtype=float64"],
    ],
)
def test_mlp_members_run_the_stacked_forward_and_match_lone_runs(tmp_path, variant, monkeypatch):
    """The MLP trains its members through its own stacked_forward, not vmap, and still matches lone runs."""
    import groklab.training.stacked as stacked

    def no_vmap(*args, **kwargs):
        raise AssertionError("vmap was used")

    monkeypatch.setattr(stacked, "vmap", no_vmap)
    assert_members_match_lone_runs(tmp_path, [*MLP, *variant])


def test_an_ensemble_step_never_copies_a_weight_per_example(tmp_path):
    """Under vmap, a Linear with stacked weights on a strided input (the last block's query slice) copies its
    weight once per example, B x C x C per member: every tensor of a step stays far below that size."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.numel = max([self.numel] + [t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)])
            return out

    shape = ["model.d_model=32", "model.d_mlp=32", "model.n_heads=1", "model.n_layers=2", "model.dropout=0.1"]
    cfgs = [resolve_config(None, [*TINY, *shape, f"run.seed={s}"]) for s in range(2)]
    ens = StackedBackend([prepare(c) for c in cfgs])
    B = ens.data.train_y.shape[1]
    with Largest() as seen:
        ens.train_step(record=False)
        ens.apply_update()
    assert seen.numel < 2 * B * 32 * 32 / 4


def test_progress_reports_every_member_of_an_ensemble(tmp_path):
    """The reporter hears every live member at each evaluation, not the last one alone, and the progress
    line shows their range."""
    from groklab.training.progress import accuracies

    class Heard:
        def __init__(self):
            self.seen = []

        def start(self, *a): ...
        def step(self, step): ...
        def close(self): ...

        def evaluated(self, step, metrics):
            self.seen.append(metrics)

    heard = Heard()
    configs = [resolve_config(None, [*TINY, *m]) for m in MEMBERS]
    run_ids, _ = start_ensemble([prepare(c) for c in configs], Store(tmp_path), heard)
    store = Store(tmp_path)
    assert all(list(m) == run_ids for m in heard.seen)  # every member, keyed by its run, in member order
    last = heard.seen[-1]
    assert [last[rid]["test_acc"] for rid in run_ids] == [store.metrics(rid)["test_acc"][1][-1] for rid in run_ids]
    rows = [{"train_acc": 1.0, "test_acc": 0.25}, {"train_acc": 0.5, "test_acc": 0.75}]
    assert accuracies(rows) == "train 0.500..1.000 test 0.250..0.750"
    assert accuracies(rows[:1]) == "train 1.000 test 0.250"


def test_an_ensemble_keeps_its_own_embedding_gradient_structures():
    """The sparse structures of the embedding gradients (models/lookup.py) are kept by the ensemble that
    built them, for its next full-batch step, and by nobody else."""
    cfgs = [resolve_config(None, [*MLP, f"run.seed={s}"]) for s in range(2)]
    ens, other = StackedBackend([prepare(c) for c in cfgs]), StackedBackend([prepare(c) for c in cfgs])
    ens.train_step(record=False)
    ens.apply_update()
    assert len(ens.row_sums) == 1 and other.row_sums == {}
    kept = next(iter(ens.row_sums.values()))[1]
    ens.train_step(record=False)
    assert next(iter(ens.row_sums.values()))[1] is kept


PADDED_WIDTHS = ["model.n_heads=1", "model.d_mlp=0"]


class StartStep(SilentReporter):
    """Notes the step a run loop starts from."""

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        self.at = step


@pytest.mark.parametrize(
    ("variant", "widths"),
    [
        ([], None),
        (["schedule.batch_size=16", "optim.grokfast.kind=ema", "model.dropout=0.2"], None),
        (["optim.name=sgd", "optim.momentum=0.9", "optim.lr=0.05", "optim.grokfast.kind=ma", "optim.grokfast.window=4"], None),
        (["optim.name=adam", "run.dtype=float64"], ["model.d_model=8", "model.d_model=16", "model.d_model=32"]),  # padded
    ],
)
@pytest.mark.parametrize("torn", [False, True])
def test_an_interrupted_ensemble_resumes_as_itself_bit_for_bit(tmp_path, variant, widths, torn):
    """Stopped at step 47 (checkpoints at 20 and 40, then one at the stop), the ensemble goes on from its
    members' checkpoints and ends with the uninterrupted ensemble's metrics exactly, row for row: the optimizer
    moments, the Grokfast filter, the minibatch accuracy window and the dropout generator are all restored.
    `torn`: a kill between two members' checkpoint writes (member 1 still at step 40) sends member 0 back to
    its previous checkpoint, so the ensemble still resumes as one, from step 40."""
    base = [*TINY, *variant, *(PADDED_WIDTHS if widths else [])]
    configs = [resolve_config(None, [*base, *m, *([widths[k]] if widths else [])]) for k, m in enumerate(MEMBERS)]
    store = Store(tmp_path / "a")
    run_ids, statuses = start_ensemble([prepare(c) for c in configs], store, InterruptAt(47))
    assert statuses == ["interrupted"] * 3
    if torn:
        folder = store.run_dir(run_ids[1])
        (folder / "checkpoint.prev.pt").replace(folder / "checkpoint.pt")  # its step-47 write never happened
        assert store.load_checkpoint(run_ids[1])["step"] == 40 and store.load_checkpoint(run_ids[0])["step"] == 47
    starts = StartStep()
    _, statuses = train_ensemble([prepare(c) for c in configs], store, run_ids, starts)
    assert statuses == ["finished"] * 3 and starts.at == (40 if torn else 47)
    ref = Store(tmp_path / "b")
    ref_ids, _ = start_ensemble([prepare(c) for c in configs], ref)
    for rid, ref_id in zip(run_ids, ref_ids, strict=True):
        assert store.metric_rows(rid) == ref.metric_rows(ref_id)
        assert store.get(rid).status == "finished"


def test_an_ensemble_whose_members_cannot_line_up_starts_over_identically(tmp_path):
    """A member with no checkpoint (it diverged, or its first write was cut) sends every member back to step 0."""
    configs = [resolve_config(None, [*TINY, *m]) for m in MEMBERS[:2]]
    store = Store(tmp_path / "a")
    run_ids, _ = start_ensemble([prepare(c) for c in configs], store, InterruptAt(47))
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (store.run_dir(run_ids[1]) / name).unlink()
    starts = StartStep()
    assert train_ensemble([prepare(c) for c in configs], store, run_ids, starts)[1] == ["finished", "finished"]
    assert starts.at == 0
    ref = Store(tmp_path / "b")
    ref_ids, _ = start_ensemble([prepare(c) for c in configs], ref)
    for rid, ref_id in zip(run_ids, ref_ids, strict=True):
        assert store.metric_rows(rid) == ref.metric_rows(ref_id)


def test_an_ensemble_with_a_member_held_elsewhere_leaves_what_it_took_interrupted(tmp_path):
    """Member 1's run is being trained by a live process: the ensemble is refused (TakenError) after creating
    member 0's run, which it leaves interrupted at step 0 for a later resume; member 1's run is not touched."""
    import subprocess

    from groklab.config import to_dict
    from groklab.store.db import TakenError

    configs = [resolve_config(None, [*TINY, *m]) for m in MEMBERS[:2]]
    store = Store(tmp_path)
    sweep_id = store.create_sweep("", {}, [{"values": {}, "config": to_dict(c)} for c in configs])
    held = store.create_run(to_dict(configs[1]), "", "", "0", "cpu", (sweep_id, 1))
    other = subprocess.Popen(["sleep", "60"])  # the live process that holds it
    try:
        store.conn.execute("UPDATE runs SET pid=? WHERE id=?", (other.pid, held))
        with pytest.raises(TakenError):
            train_ensemble([prepare(c) for c in configs], store, [None, held], sweep=(sweep_id, [0, 1]))
    finally:
        other.kill()
    first = store.get(store.sweep_runs(sweep_id)[0])
    assert (first.status, first.step) == ("interrupted", 0)
    assert store.get(held).status == "running" and store.metric_rows(held) == []


def test_a_member_checkpoint_of_another_model_is_named_and_the_ensemble_left_as_it_was(tmp_path):
    from groklab.store.checkpoints import DamagedCheckpointError

    configs = [resolve_config(None, [*TINY, *m]) for m in MEMBERS[:2]]
    store = Store(tmp_path / "a")
    run_ids, _ = start_ensemble([prepare(c) for c in configs], store, InterruptAt(47))
    other = groklab.run(None, [*TINY, "model.d_model=16", "schedule.steps=47"], runs_dir=tmp_path / "other")
    foreign = other.store.run_dir(other.id) / "checkpoint.pt"
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (store.run_dir(run_ids[1]) / name).write_bytes(foreign.read_bytes())
    rows = [store.metric_rows(r) for r in run_ids]
    with pytest.raises(DamagedCheckpointError, match=f"{run_ids[1]}/checkpoint.pt: does not fit this run's model"):
        train_ensemble([prepare(c) for c in configs], store, run_ids)
    assert [store.get(r).status for r in run_ids] == ["interrupted", "interrupted"]
    assert [store.metric_rows(r) for r in run_ids] == rows
