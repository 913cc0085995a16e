"""Build an ExperimentConfig from YAML, dicts and dotted `key=value` overrides, checking every type.

Values from the command line arrive as raw strings (`Raw`); they are parsed
according to the type of the field they land in, so `run.name=123` stays a
string while `optim.lr=1e-3` becomes a float.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from groklab.errors import ConfigError, GroklabError
from groklab.schema import ExperimentConfig, MeasuresConfig, ModelConfig, TaskConfig


class Raw(str):
    """A value typed on the command line, not yet parsed."""


MAX_DEPTH = 16  # nesting of lists and mappings in a value or a config file; configs need 3
MAX_FILE_BYTES = 1 << 20  # a config or sweep file; the shipped presets are under 4 KiB
INT64 = 2**63 - 1  # torch and SQLite hold integers in 64 bits


class _Loader(yaml.SafeLoader):
    """YAML without aliases: `*ref` lets a ten-line file expand to billions of nodes (an alias bomb), and no
    config needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError("", f"YAML aliases (*{event.anchor}) are not supported in configs; write the value out")
        return super().compose_node(parent, index)


def safe_yaml(text: str, where: str) -> Any:
    """Parse YAML text as groklab reads it: no aliases, nesting at most MAX_DEPTH; errors name `where`."""
    try:
        value = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except RecursionError:
        raise ConfigError(where, f"nested more than {MAX_DEPTH} levels deep") from None
    except ConfigError as exc:
        raise ConfigError(where, str(exc)) from None
    check_depth(value, where)
    return value


def check_depth(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(where, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for v in value.values():
            check_depth(v, where, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            check_depth(v, where, depth + 1)


_POLYMORPHIC = {"task": TaskConfig, "model": ModelConfig}


def _section_class(section: str, name: Any) -> type:
    """The config dataclass registered for `task.name` / `model.name`."""
    from groklab.models import MODELS
    from groklab.tasks import TASKS

    registry = TASKS if section == "task" else MODELS
    if not isinstance(name, str):
        raise ConfigError(f"{section}.name", f"must be a string; choose one of {', '.join(registry.names())}")
    config = registry.entry(name, f"{section}.name").config
    assert config is not None, f"{section} {name!r} is registered without its config dataclass"
    return config


def _parse_raw(value: Raw, path: str) -> Any:
    try:
        return safe_yaml(str(value), path)
    except yaml.YAMLError:
        raise ConfigError(path, f"cannot parse value {str(value)!r}") from None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Convert `value` to type `tp` or raise a ConfigError naming `path`."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~"))):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(path, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, Raw):
            value = str(value) if str(value) in allowed else _parse_raw(value, path)
        if value not in allowed:
            raise ConfigError(path, f"unknown value {str(value)!r}; choose one of {', '.join(map(str, allowed))}")
        return value
    if tp is str:
        if isinstance(value, str):
            return _text(str(value), path)
        raise ConfigError(path, f"expected a string, got {value!r}")
    if isinstance(value, Raw):
        value = _parse_raw(value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected an integer, got {value!r}")
        n = value if isinstance(value, int) else _integral(_number(value, path, "an integer"))
        if n is None:
            raise ConfigError(path, f"expected an integer, got {value!r}")
        if abs(n) > INT64:
            raise ConfigError(path, f"{value!r} does not fit in 64 bits (at most {INT64})")
        return n
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected a number, got {value!r}")
        return _number(value, path, "a number")
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, list | tuple) and len(value) == len(args):
            return tuple(coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        raise ConfigError(path, f"expected a list of {len(args)} values, got {value!r}")
    if origin is list:
        (arg,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            return [coerce(v, arg, f"{path}[{i}]") for i, v in enumerate(value)]
        raise ConfigError(path, f"expected a list, got {value!r}")
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        if isinstance(value, dict):
            return {coerce(k, key_t, path): coerce(v, val_t, f"{path}.{k}") for k, v in value.items()}
        raise ConfigError(path, f"expected a mapping, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a bug in a schema, not user input


def _text(value: str, path: str) -> str:
    """A string that can be stored and printed: valid Unicode (no lone surrogates) without NUL characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(path, f"{value!r} is not valid text (a lone surrogate character)") from None
    if "\x00" in value:
        raise ConfigError(path, "must not contain a NUL character")
    return value


def _number(value: Any, path: str, what: str) -> float:
    """A finite float from a number or a string of ASCII digits (float() also reads '١٢' and '1e400' = inf)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > INT64:
            raise ConfigError(path, f"{value!r} does not fit in 64 bits (at most {INT64})")
        f = float(value)
    elif isinstance(value, float):
        f = value
    elif isinstance(value, str) and value.isascii():
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(path, f"expected {what}, got {value!r}") from None
    else:
        raise ConfigError(path, f"expected {what}, got {value!r}")
    if f != f or f in (float("inf"), float("-inf")):
        raise ConfigError(path, f"must be a finite number, got {value!r}")
    return f


def _integral(f: float) -> int | None:
    return int(f) if f.is_integer() else None


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(where, f"unknown config key; {path or 'config'} has: {', '.join(fields)}")
        sub = f"{path}.{key}" if path else key
        kwargs[key] = coerce(value, hints[key], sub)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Build and validate an ExperimentConfig from a plain nested mapping."""
    if not isinstance(data, dict):
        raise ConfigError("", f"a config must be a mapping of sections, got {data!r}")
    data = dict(data)
    sections = {}
    for section, base in _POLYMORPHIC.items():
        raw = data.pop(section, None) or {}
        if not isinstance(raw, dict):
            raise ConfigError(section, f"expected a mapping of keys, got {raw!r}")
        name = raw.get("name", base.name)
        if isinstance(name, Raw):
            name = str(name)
        cls = _section_class(section, name)
        sections[section] = build_dataclass(cls, {**raw, "name": name}, section)
    measures = data.pop("measures", None) or {}
    cfg = build_dataclass(ExperimentConfig, data, "")
    cfg.task, cfg.model = sections["task"], sections["model"]
    cfg.measures = build_dataclass(measures_config_class(), measures, "measures")
    _check_measure_names(cfg)
    cfg.validate()
    from groklab.tasks import TASKS

    TASKS.get(cfg.task.name).check_compatible(cfg)
    return cfg


@functools.cache
def measures_config_class() -> type[MeasuresConfig]:
    """The `measures` section as resolved: MeasuresConfig (which measures, how often) with the keys of every
    registered measure's own config dataclass. Named here, so a resolved config pickles."""
    from groklab.measures import MEASURES

    parts: list[type] = []
    for name in MEASURES:
        part = MEASURES.entry(name).config
        if part is not None and part not in parts:
            parts.append(part)

    def validate(self: MeasuresConfig) -> None:
        for part in (MeasuresConfig, *parts):
            part.validate(self)

    bases = (*reversed(parts), MeasuresConfig)
    cls = dataclasses.make_dataclass("ResolvedMeasuresConfig", [], bases=bases, namespace={"validate": validate})
    cls.__module__ = __name__
    return cls


def __getattr__(name: str) -> Any:
    if name == "ResolvedMeasuresConfig":  # for pickle: the class is built on first use
        return measures_config_class()
    raise AttributeError(name)


def _check_measure_names(cfg: ExperimentConfig) -> None:
    """Every measure the config names is registered (a cadence for a known but disabled measure is kept, unused)."""
    from groklab.measures import MEASURES

    for name in cfg.measures.enabled:
        MEASURES.get(name, "measures.enabled")
    for name in cfg.measures.every:
        if name not in MEASURES:
            raise ConfigError(f"measures.every.{name}", f"is not a measure; choose one of {', '.join(MEASURES)}")


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain YAML/JSON-safe data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def parse_overrides(items: list[str]) -> dict[str, Raw]:
    """`["model.d_model=64", ...]` -> {"model.d_model": Raw("64")}; malformed items are errors."""
    out: dict[str, Raw] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(key or item, f"override {item!r} must look like section.key=value")
        out[key] = Raw(value)
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge dotted overrides into a nested mapping.

    Changing `task.name` or `model.name` starts that section afresh, so a
    preset's transformer keys do not leak into an MLP.
    """
    data = _deep_copy(data)
    for section in _POLYMORPHIC:
        key = f"{section}.name"
        if key in overrides and str(overrides[key]) != str((data.get(section) or {}).get("name", "")):
            data[section] = {}
    for key, value in overrides.items():
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts[: i + 1]), f"is a value, not a section; cannot set {key}")
            node = child
        node[parts[-1]] = value
    return data


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file: at most MAX_FILE_BYTES of UTF-8 YAML holding a mapping; anything else is a one-line error."""
    p = Path(path)
    where = f"config file {str(p)!r}"
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise GroklabError(f"{where}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise GroklabError(f"{where}: larger than {MAX_FILE_BYTES >> 20} MiB; a config is a few lines of YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GroklabError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = safe_yaml(text, where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise GroklabError(f"{where}: invalid YAML{at}") from None
    except ConfigError as exc:
        raise GroklabError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GroklabError(f"{where}: must contain a mapping of sections, not {type(data).__name__} {short_repr(data)}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise GroklabError(f"{where}: keys must be names, got {bad[0]!r}")
    return data


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
