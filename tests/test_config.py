"""Configs: presets load, overrides are typed, the resolved config round-trips."""

from __future__ import annotations

import pytest
import yaml

from groklab.config import describe_presets, from_dict, preset_names, resolve_config, to_dict
from groklab.errors import ConfigError, GroklabError

PAPER_PRESETS = {"modular-addition", "nanda2023", "gu2025", "power2022", "davies2023", "grokfast"}


def test_every_preset_resolves_and_has_a_description():
    assert set(preset_names()) >= PAPER_PRESETS
    for name, desc in describe_presets():
        assert desc, name
        cfg = resolve_config(name)
        assert cfg.preset == name


def test_presets_match_the_issue_spec():
    n = resolve_config("nanda2023")
    assert (n.task.p, n.task.train_frac, n.model.n_layers, n.model.norm, n.model.d_model, n.model.n_heads, n.model.d_mlp) == (
        113,
        0.3,
        1,
        "none",
        128,
        4,
        512,
    )
    assert (n.schedule.batch_size, n.optim.name, n.optim.lr, n.optim.weight_decay, n.optim.betas) == (0, "adamw", 1e-3, 1.0, (0.9, 0.98))
    g = resolve_config("gu2025")
    assert (g.task.p, g.task.train_frac, g.optim.warmup_steps, g.schedule.batch_size) == (97, 0.3, 10, 0)
    p = resolve_config("power2022")
    assert (p.task.op, p.task.p, p.task.train_frac, p.model.n_layers, p.model.norm, p.schedule.batch_size, p.optim.weight_decay) == (
        "div",
        97,
        0.5,
        2,
        "post",
        512,
        1.0,
    )
    d = resolve_config("davies2023")
    assert (d.task.op, d.model.n_layers, d.model.n_heads, d.model.dropout, d.optim.weight_decay) == ("div", 2, 1, 0.1, 1e-5)
    assert (d.model.init, d.model.pos) == ("torch", "sinusoidal")  # the authors' code: PyTorch's layer defaults, fixed sin/cos positions
    assert (d.model.dropout_at, d.task.format, d.task.n_tokens) == (["mlp"], "power", 2000)  # their ffn_drop, <eos> a / b =, 2000 tokens
    assert resolve_config("grokfast").optim.grokfast.kind == "ema"


def test_dotted_overrides_are_parsed_by_field_type():
    cfg = resolve_config(
        "nanda2023",
        [
            "model.d_model=64",
            "optim.weight_decay=0.3",
            "optim.lr=1e-3",
            "run.name=123",
            "optim.betas=[0.8,0.9]",
            "schedule.stop_test_acc=null",
            "measures.enabled=loss_acc,med",
        ],
    )
    assert cfg.model.d_model == 64 and isinstance(cfg.model.d_model, int)
    assert cfg.optim.weight_decay == 0.3 and cfg.optim.lr == 1e-3
    assert cfg.run.name == "123"
    assert cfg.optim.betas == (0.8, 0.9)
    assert cfg.schedule.stop_test_acc is None
    assert cfg.measures.enabled == ["loss_acc", "med"]


def test_changing_model_name_starts_the_section_afresh():
    cfg = resolve_config("nanda2023", ["model.name=mlp", "model.d_mlp=64"])
    assert cfg.model.name == "mlp" and cfg.model.d_mlp == 64
    assert not hasattr(cfg.model, "n_heads")


def test_resolved_config_round_trips_through_yaml():
    cfg = resolve_config("power2022", ["optim.grokfast.kind=ma", "measures.every.med=5"])
    again = from_dict(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    assert again == cfg


def test_yaml_file_as_preset(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("task: {p: 31, op: mul}\nmodel: {d_model: 32, n_heads: 2}\n")
    cfg = resolve_config(str(path), ["optim.lr=0.01"])
    assert (cfg.task.p, cfg.task.op, cfg.model.d_model, cfg.optim.lr) == (31, "mul", 32, 0.01)


@pytest.mark.parametrize(
    "override,field",
    [
        ("model.pos=rotary", "model.pos"),
        ("task.p=4", "task.p"),
        ("task.p=2", "task.p"),
        ("task.train_frac=1.0", "task.train_frac"),
        ("task.train_frac=0", "task.train_frac"),
        ("task.op=pow", "task.op"),
        ("model.name=lstm", "model.name"),
        ("model.act=swish", "model.act"),
        ("model.d_modle=64", "model.d_modle"),
        ("model.d_model=abc", "model.d_model"),
        ("model.d_model=1.5", "model.d_model"),
        ("optim.lr=-1", "optim.lr"),
        ("optim.lr=0", "optim.lr"),
        ("optim.name=rmsprop", "optim.name"),
        ("model.d_model=130", "model.n_heads"),
        ("task.split=square:97", "task.split"),
        ("task.split=strip:200", "task.split"),
        ("schedule.steps=0", "schedule.steps"),
        ("run.device=tpu", "run.device"),
        ("measures.enabled=loss_acc,nope", "measures.enabled"),
        ("run.dtype=float16", "run.dtype"),
        ("nosection.x=1", "nosection"),
    ],
)
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError) as info:
        resolve_config("gu2025", [override])
    assert str(info.value).startswith(field)
    assert "\n" not in str(info.value)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(GroklabError, match=r"choose one of .*nanda2023"):
        resolve_config("nanda2024")


def test_api_accepts_a_config_object_or_a_dict_with_overrides():
    from groklab.api import _as_config

    base = resolve_config("gu2025")
    assert _as_config(base, ["model.d_model=64"]).model.d_model == 64
    assert _as_config(to_dict(base), {"optim.lr": 0.01}).optim.lr == 0.01
    assert _as_config(base, None) == base


def test_changes_from_preset_lists_exactly_the_overridden_keys(tmp_path):
    from groklab.config import changes_from_preset

    saved = to_dict(resolve_config("gu2025", ["task.p=47", "optim.betas=[0.9,0.99]", "run.name=mine", "run.seed=3"]))
    assert changes_from_preset(saved, "gu2025") == {"task.p": 47, "optim.betas": [0.9, 0.99], "run.seed": 3}
    assert changes_from_preset(to_dict(resolve_config("gu2025")), "gu2025") == {}
    assert changes_from_preset(saved, "no-such-preset") == {}  # a preset gone since the run: nothing to compare with

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"extends": "gu2025", "task": {"p": 47}}))
    assert changes_from_preset(saved, str(path)) == {"optim.betas": [0.9, 0.99], "run.seed": 3}
