"""Modular arithmetic: labels against a direct computation, and splits exactly as specified."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.tasks import build_task
from groklab.tasks.modular import OPS, ModularConfig, is_prime

PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]

DIRECT = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: (a * pow(b, -1, p)) % p,
    "x2y2": lambda a, b, p: (a**2 + b**2) % p,
    "x2xyy2": lambda a, b, p: (a**2 + a * b + b**2) % p,
    "x3xy": lambda a, b, p: (a**3 + a * b) % p,
    "x3xyy3": lambda a, b, p: (a**3 + a * b + b**3) % p,
    "x3y3": lambda a, b, p: (a**3 + b**3) % p,
    "x2xyy2x": lambda a, b, p: (a**2 + a * b + b**2 + a) % p,
    "x3xy2y": lambda a, b, p: (a**3 + a * b**2 + b) % p,
    "divsub": lambda a, b, p: (a * pow(b, -1, p)) % p if b % 2 == 1 else (a - b) % p,  # Power et al.'s mix1
}


def task(**kw):
    cfg = ModularConfig(**kw)
    cfg.validate()
    return build_task(cfg)


def test_every_operation_is_checked():
    assert set(DIRECT) == set(OPS)


@pytest.mark.parametrize("op", sorted(DIRECT))
@pytest.mark.parametrize("p", [5, 13, 97])
def test_labels_match_direct_computation(op, p):
    data = task(p=p, op=op, train_frac=0.5).build()
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        for (a, b, eq), label in zip(x.tolist(), y.tolist(), strict=True):
            assert eq == p
            assert label == DIRECT[op](a, b, p)


def test_division_is_power_style():
    # a / b = c with a = b·c mod p, b != 0: every (a, b != 0) pair once, each with the unique c.
    p = 11
    data = task(p=p, op="div", train_frac=0.5).build()
    x = torch.cat([data.train_x, data.test_x])
    y = torch.cat([data.train_y, data.test_y])
    assert len(x) == p * (p - 1)
    assert (x[:, 1] != 0).all()
    assert ((x[:, 1] * y) % p == x[:, 0]).all()


@settings(max_examples=40, deadline=None)
@given(p=st.sampled_from(PRIMES), frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**31 - 1), op=st.sampled_from(sorted(OPS)))
def test_random_split_is_disjoint_complete_and_sized(p, frac, seed, op):
    n_pairs = p * (p - 1) if op == "div" else p * p
    n_train = int(frac * n_pairs)
    if not 0 < n_train < n_pairs:
        with pytest.raises(ConfigError):
            ModularConfig(p=p, op=op, train_frac=frac, seed=seed).validate()
        return
    data = task(p=p, op=op, train_frac=frac, seed=seed).build()
    train = {tuple(r) for r in data.train_x.tolist()}
    test = {tuple(r) for r in data.test_x.tolist()}
    assert len(train) == len(data.train_x) == n_train
    assert len(test) == len(data.test_x) == n_pairs - n_train
    assert not train & test


def test_split_depends_on_task_seed_only():
    a = task(p=23, train_frac=0.3, seed=1).build()
    b = task(p=23, train_frac=0.3, seed=1).build()
    c = task(p=23, train_frac=0.3, seed=2).build()
    assert torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, c.train_x)
    # the model seed must not move the data split
    cfg1 = resolve_config(None, ["task.p=23", "run.seed=1"])
    cfg2 = resolve_config(None, ["task.p=23", "run.seed=2"])
    assert torch.equal(build_task(cfg1.task).build().train_x, build_task(cfg2.task).build().train_x)


@settings(max_examples=25, deadline=None)
@given(p=st.sampled_from([11, 13, 17, 23, 31]), frac=st.floats(0.1, 0.5), data=st.data())
def test_square_split_holds_out_the_square(p, frac, data):
    k = data.draw(st.integers(0, p - 2))
    d = task(p=p, train_frac=frac, split=f"square:{k}").build()
    tr, te = d.train_x, d.test_x
    in_square = lambda x: (x[:, 0] <= k) & (x[:, 1] <= k)  # noqa: E731
    assert not in_square(tr).any()
    assert int(in_square(te).sum()) == (k + 1) ** 2
    remaining = p * p - (k + 1) ** 2
    assert len(tr) == min(int(frac * p * p), remaining)
    assert len(tr) + len(te) == p * p


@settings(max_examples=25, deadline=None)
@given(p=st.sampled_from([11, 13, 17, 23, 31]), frac=st.floats(0.1, 0.5), data=st.data())
def test_strip_split_holds_out_the_strip(p, frac, data):
    t = data.draw(st.integers(0, p - 2))
    d = task(p=p, train_frac=frac, split=f"strip:{t}").build()
    assert not (d.train_x[:, 0] <= t).any()
    assert int((d.test_x[:, 0] <= t).sum()) == (t + 1) * p
    assert len(d.train_x) == min(int(frac * p * p), (p - 1 - t) * p)


def test_gu_table1_strip67_takes_all_remaining_pairs():
    # At p=97, strip t=67 leaves 97·29 = 2813 pairs, fewer than 30% of 97² = 2822: all of them train.
    d = task(p=97, train_frac=0.3, split="strip:67").build()
    assert len(d.train_x) == 97 * 29
    assert len(d.test_x) == 68 * 97


@pytest.mark.parametrize("p,ok", [(2, False), (3, True), (4, False), (9, False), (97, True), (113, True), (221, False)])
def test_prime_check(p, ok):
    assert is_prime(p) == (ok or p == 2)
    if ok:
        ModularConfig(p=p).validate()
    else:
        with pytest.raises(ConfigError, match=r"task\.p"):
            ModularConfig(p=p).validate()


@pytest.mark.parametrize("split", ["square:-1", "square:96", "strip:96", "strip:x", "diamond:3", "square"])
def test_bad_splits(split):
    with pytest.raises(ConfigError, match=r"task\.split"):
        ModularConfig(p=97, split=split).validate()


@pytest.mark.parametrize("op", ["add", "div", "x3xy"])
def test_power_format_is_the_equation_read_at_the_equals_sign(op):
    """<eos> a op b = with the same pairs, labels and split as [a, b, =]; padding tokens change only the sizes."""
    compact, power = task(p=13, op=op, train_frac=0.5), task(p=13, op=op, train_frac=0.5, format="power", n_tokens=40)
    c, w = compact.build(), power.build()
    assert torch.equal(c.train_y, w.train_y) and torch.equal(c.test_y, w.test_y)
    assert torch.equal(w.train_x[:, [1, 3, 4]], c.train_x)  # a, b, = where the compact format has them
    assert (w.train_x[:, 0] == 14).all() and (w.train_x[:, 2] == 15).all()  # <eos>, the operator
    spec = power.spec
    assert (spec.seq_len, spec.vocab_size, spec.n_classes, spec.operand_positions) == (5, 40, 40, (1, 3))
    assert (compact.spec.vocab_size, compact.spec.n_classes, compact.spec.operand_positions) == (14, 13, (0, 1))


@settings(max_examples=20, deadline=None)
@given(p=st.sampled_from([5, 11, 13, 17]), offset=st.integers(1, 30), data=st.data())
def test_separate_b_tokens_are_gu_strs_layout(p, offset, data):
    """b as token b + offset and "=" after them (their str.py: offset 60, "=" = d_vocab - 1); same pairs, labels and split."""
    split = data.draw(st.sampled_from(["random", f"strip:{p // 2}", f"square:{p // 3}"]))
    shared, separate = task(p=p, split=split), task(p=p, split=split, b_offset=offset)
    s, t = shared.build(), separate.build()
    assert torch.equal(s.train_y, t.train_y) and torch.equal(s.test_y, t.test_y)
    for x, y in ((t.train_x, t.train_y), (t.test_x, t.test_y)):
        for (a, b, eq), label in zip(x.tolist(), y.tolist(), strict=True):
            assert 0 <= a < p and offset <= b < offset + p and eq == p + offset
            assert label == (a + b - offset) % p
    spec = separate.spec
    assert (spec.vocab_size, spec.n_classes, spec.operand_token_offsets) == (p + offset + 1, p, (0, offset))
    if split.startswith("strip"):  # the strip's a-tokens never appear in training, in either position, below the offset
        seen = set(t.train_x[:, :2].flatten().tolist())
        assert not any(tok in seen for tok in range(min(p // 2 + 1, offset)))


def test_gu_strip_layout_at_p97_leaves_tokens_0_to_59_untrained():
    d = task(p=97, split="strip:67", b_offset=60, n_tokens=0).build()
    seen = set(d.train_x[:, :2].flatten().tolist())
    assert seen.isdisjoint(range(60)) and set(range(60, 157)) <= seen
    assert task(p=97, b_offset=60).spec.vocab_size == 158


@pytest.mark.parametrize("kw,field", [({"b_offset": -1}, "task.b_offset"), ({"b_offset": 60, "format": "power"}, "task.b_offset")])
def test_bad_b_offset(kw, field):
    with pytest.raises(ConfigError) as exc:
        ModularConfig(p=13, **kw).validate()
    assert exc.value.field == field


def test_the_infix_format_and_nonzero_b_follow_lee_et_al():
    """Their main.py: x · y for 1 <= y < p, the input [x, ∘, y, =] with = as token p and ∘ as p + 1."""
    t = task(p=7, op="mul", train_frac=0.5, format="infix", nonzero_b=True)
    data = t.build()
    x, y = torch.cat([data.train_x, data.test_x]), torch.cat([data.train_y, data.test_y])
    assert x.shape == (7 * 6, 4) and t.spec.seq_len == 4 and t.spec.vocab_size == 9 and t.spec.operand_positions == (0, 2)
    assert (x[:, 1] == 8).all() and (x[:, 3] == 7).all() and (x[:, 2] >= 1).all()
    assert torch.equal(y, x[:, 0] * x[:, 2] % 7)
    assert len(data.train_y) == int(0.5 * 42)


def test_nonzero_b_refuses_the_fourier_circuit_measure():
    with pytest.raises(ConfigError, match=r"task\.nonzero_b"):
        resolve_config("nanda2023", ["task.nonzero_b=true", "measures.enabled=[loss_acc,fourier_circuit]"])
