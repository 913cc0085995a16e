"""Power et al.'s S5 tasks: the composition table is a group, conjugation and a·b·a against a direct
composition of permutations, the data, and a config that asks for a prime."""

from __future__ import annotations

import itertools

import pytest
import torch

import groklab
from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.tasks import build_task
from groklab.tasks.permutations import s5_table

PERMS = list(itertools.permutations(range(5)))


def then(p: tuple[int, ...], q: tuple[int, ...]) -> tuple[int, ...]:
    """p, then q: i -> q[p[i]]."""
    return tuple(q[p[i]] for i in range(5))


def inverse(p: tuple[int, ...]) -> tuple[int, ...]:
    out = [0] * 5
    for i, j in enumerate(p):
        out[j] = i
    return tuple(out)


def test_composition_is_a_group():
    t = s5_table("compose")
    idx = torch.arange(120)
    a, b, c = torch.meshgrid(idx, idx, idx, indexing="ij")
    assert torch.equal(t[t[a, b], c], t[a, t[b, c]])  # associative, over all 1,728,000 triples
    identity = PERMS.index(tuple(range(5)))
    assert torch.equal(t[identity], idx) and torch.equal(t[:, identity], idx)
    assert all(sorted(row) == list(range(120)) for row in t.tolist())  # a Latin square: every a has an inverse
    assert (t[idx, t.eq(identity).int().argmax(1)] == identity).all()
    assert not torch.equal(t, t.T)  # S5 is not abelian


@pytest.mark.parametrize(
    ("op", "direct"),
    [
        ("compose", lambda a, b: then(a, b)),
        ("conj", lambda a, b: then(then(a, b), inverse(a))),
        ("aba", lambda a, b: then(then(a, b), a)),
    ],
)
def test_the_tables_against_composing_permutations(op, direct):
    t = s5_table(op)
    for i, a in enumerate(PERMS):
        for j, b in enumerate(PERMS[::7]):
            assert PERMS[t[i, 7 * j]] == direct(a, b)


def test_conjugation_keeps_the_cycle_type():
    def cycle_type(p: tuple[int, ...]) -> list[int]:
        seen, lengths = set(), []
        for s in range(5):
            n, i = 0, s
            while i not in seen:
                seen.add(i)
                i, n = p[i], n + 1
            if n:
                lengths.append(n)
        return sorted(lengths)

    t = s5_table("conj")
    assert all(cycle_type(PERMS[t[a, b]]) == cycle_type(PERMS[b]) for a in range(0, 120, 5) for b in range(120))


@pytest.mark.parametrize("fmt", ["compact", "power"])
def test_the_data_covers_every_pair_once(fmt):
    cfg = resolve_config(None, ["task.name=s5", "task.op=aba", f"task.format={fmt}", "task.train_frac=0.3", "measures.enabled=[loss_acc]"])
    data = build_task(cfg.task).build()
    x, y = torch.cat([data.train_x, data.test_x]), torch.cat([data.train_y, data.test_y])
    pos = (0, 1) if fmt == "compact" else (1, 3)
    pairs = {(int(r[pos[0]]), int(r[pos[1]])) for r in x}
    assert len(pairs) == 14400 and len(data.train_y) == int(0.3 * 14400)
    t = s5_table("aba")
    assert torch.equal(y, t[x[:, pos[0]], x[:, pos[1]]])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["task.p=97"], "task.p"),
        (["task.split=square:30"], "task.split"),
        (["task.op=add"], "task.op"),
        (["model.name=deep_mlp"], "model.name"),
    ],
)
def test_prime_only_options_are_refused_with_their_name(overrides, field):
    with pytest.raises(ConfigError) as err:
        resolve_config(None, ["task.name=s5", *overrides])
    assert err.value.field == field


@pytest.mark.parametrize("op", ["compose", "conj", "aba"])
def test_the_s5_preset_trains(tmp_path, op):
    small = ["model.d_model=32", "model.n_heads=2", "model.d_mlp=64", "schedule.steps=4", "schedule.eval_every=2", "run.device=cpu"]
    run = groklab.run("power2022-s5", [f"task.op={op}", *small], runs_dir=tmp_path)
    final = run.final()
    assert run.record.status == "finished" and 0.0 <= final["test_acc"] <= 1.0 and final["train_loss"] > 0
