"""Presets: named YAML configs shipped inside the package, one file each.

A preset file has a one-line `description`, optionally `extends: OTHER` to
start from another preset, and config sections. A path to a YAML file can be
used wherever a preset name is accepted.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from groklab.config.loading import Raw, apply_overrides, from_dict, load_yaml, parse_overrides, to_dict
from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig

DEFAULT_PRESET = "modular-addition"


def _preset_dir() -> Any:
    return resources.files("groklab.config") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in _preset_dir().iterdir() if p.name.endswith(".yaml"))


def _read_preset(name: str) -> dict[str, Any]:
    path = _preset_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    with resources.as_file(path) as p:
        return load_yaml(p)


def describe_presets() -> list[tuple[str, str]]:
    """(name, one-line description) for every shipped preset."""
    return [(name, str(_read_preset(name).get("description", ""))) for name in preset_names()]


def preset_data(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config mapping of a preset or YAML file, with `extends` resolved."""
    looks_like_file = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path
    data = load_yaml(name_or_path) if looks_like_file and Path(name_or_path).exists() else None
    if data is None:
        if looks_like_file:
            raise ConfigError("preset", f"config file {name_or_path!r} does not exist")
        data = _read_preset(name_or_path)
    data = dict(data)
    data.pop("description", None)
    parent = data.pop("extends", None)
    if parent is not None and not isinstance(parent, str):
        raise ConfigError("extends", f"must name a preset or YAML file, got {parent!r}")
    if parent is not None:
        if parent in _seen:
            raise ConfigError("extends", f"preset cycle: {' -> '.join((*_seen, parent))}")
        base = preset_data(parent, (*_seen, name_or_path))
        flat = flatten(data)
        data = apply_overrides(base, flat)
    return data


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted key -> value (`optim.weight_decay`); lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def resolve_config(preset: str | None = None, overrides: list[str] | dict[str, Any] | None = None) -> ExperimentConfig:
    """Preset (or file) + overrides -> a validated ExperimentConfig."""
    name = preset or DEFAULT_PRESET
    data = preset_data(name)
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    data = apply_overrides(data, overrides or {})
    data.setdefault("preset", Raw(name) if isinstance(name, str) else name)
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise _as_typed(exc, list(overrides or {})) from None


def _as_typed(exc: ConfigError, keys: list[str]) -> ConfigError:
    """An unknown key named as the user typed it: `no.such.key=1` fails at the section `no`, which says less."""
    if not str(exc).startswith(f"{exc.field}: unknown config key"):
        return exc
    typed = [k for k in keys if k.startswith(f"{exc.field}.")]
    if len(typed) != 1:
        return exc
    return ConfigError(typed[0], str(exc).removeprefix(f"{exc.field}: "))


def changes_from_preset(config: dict[str, Any], preset: str, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dotted keys where a saved run config differs from its preset.

    So `groklab runs` can tell apart two runs of one preset (`gu2025 task.p=47` from `gu2025`). The preset
    is `baseline`, the config it resolved to when the run was created (`preset_baseline`, saved with the
    run), else the preset as it resolves today: a preset edited since then would otherwise show its own
    edits as the run's changes. Empty when there is neither; run.name and run.notes are not settings.
    """
    base = flatten(baseline) if baseline is not None else _resolved_flat(preset)
    if base is None:
        return {}
    saved = flatten(config)
    return {k: v for k, v in saved.items() if base.get(k, object()) != v and k not in ("run.name", "run.notes", "preset")}


def preset_baseline(preset: str) -> dict[str, Any] | None:
    """The config a preset (or YAML file) resolves to now, to save with a run; None if it does not resolve."""
    try:
        return to_dict(resolve_config(preset))
    except ConfigError:
        return None


@lru_cache(maxsize=32)
def _resolved_flat(preset: str) -> dict[str, Any] | None:
    """A preset resolved and flattened to dotted keys (read-only; cached: `groklab runs` asks once per run)."""
    baseline = preset_baseline(preset)
    return None if baseline is None else flatten(baseline)
