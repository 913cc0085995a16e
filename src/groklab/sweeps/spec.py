"""What a sweep is: a preset, fixed overrides, a grid of values per key, and a number of seeds.

Grid values are written as a list (`0.1,0.3,1.0`), an inclusive integer range
(`1:149:2` is 1, 3, ..., 149) or an inclusive log range (`log:1e-4:1:9` is nine
values from 1e-4 to 1, evenly spaced in log scale). Seeds set `run.seed` to
S..S+N-1, where S is a `run.seed=S` override (default 0). Every point's config is resolved and checked before anything runs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from groklab.config import ExperimentConfig, resolve_config, to_dict
from groklab.config.loading import Raw, load_yaml, short_repr
from groklab.errors import ConfigError, GroklabError

MAX_VALUES = 10_000  # values of one grid key
MAX_POINTS = 10_000  # runs of one sweep (grid points x seeds) without --allow-large: each is resolved and stored up front


def _ascii_int(text: str) -> bool:
    """An integer in ASCII digits ('²' and '١' pass str.isdigit but not int())."""
    t = text.strip().removeprefix("-")
    return t.isascii() and t.isdigit()


def parse_values(key: str, text: str) -> list[Any]:
    """The values of one grid key from its command-line form (see the module docstring)."""
    text = text.strip()
    where = f"--grid {key}"
    if text.startswith("log:"):
        parts = text[4:].split(":")
        if len(parts) != 3:
            raise ConfigError(where, f"log range {text!r} must look like log:START:STOP:COUNT")
        try:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ConfigError(where, f"log range {text!r} must look like log:START:STOP:COUNT (numbers)") from None
        if start <= 0 or stop <= 0 or count < 1:
            raise ConfigError(where, f"log range {text!r} needs START, STOP > 0 and COUNT >= 1")
        if not (math.isfinite(start) and math.isfinite(stop)):
            raise ConfigError(where, f"log range {text!r} needs finite START and STOP")
        if count > MAX_VALUES:
            raise ConfigError(where, f"log range {text!r} has {count:,} values; at most {MAX_VALUES:,} per key")
        if count == 1:
            return [start]
        lo, hi = math.log10(start), math.log10(stop)
        return [float(f"{10 ** (lo + (hi - lo) * i / (count - 1)):.6g}") for i in range(count)]
    if ":" in text and all(_ascii_int(p) for p in text.split(":")):
        parts = [int(p) for p in text.split(":")]
        if len(parts) not in (2, 3):
            raise ConfigError(where, f"range {text!r} must look like START:STOP or START:STOP:STEP")
        start, stop, step = (*parts, 1) if len(parts) == 2 else parts
        if step == 0 or (stop - start) * step < 0:
            raise ConfigError(where, f"range {text!r} is empty or never reaches {stop}")
        values = range(start, stop + (1 if step > 0 else -1), step)
        if len(values) > MAX_VALUES:
            raise ConfigError(where, f"range {text!r} has {len(values):,} values; at most {MAX_VALUES:,} per key")
        return list(values)
    if ":" in text and text.split(":")[0].strip().lstrip("-").replace(".", "", 1).isdigit():
        raise ConfigError(where, f"malformed range {text!r}; integer ranges look like 1:149:2, log ranges like log:1e-4:1:9")
    values = [v.strip() for v in text.split(",")]
    if not text or any(v == "" for v in values):
        raise ConfigError(where, f"empty value in {text!r}; give a list like 0.1,0.3,1.0")
    return [Raw(v) for v in values]


@dataclass
class SweepSpec:
    """A sweep before it runs: enough to rebuild every point's config."""

    preset: str = ""
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: int = 1
    name: str = ""
    allow_large: bool = False  # lift MAX_POINTS (not stored: a stored sweep is already planned)
    allow_one: bool = False  # a sweep of one run, as a reproduction's arm at one seed (not stored either)

    def points(self) -> list[dict[str, Any]]:
        """One mapping of dotted key -> value per run: the grid's cartesian product, then the seeds."""
        n = math.prod(len(v) for v in self.grid.values()) * self.seeds
        if n > MAX_POINTS and not self.allow_large:
            where = "--seeds" if self.seeds > MAX_POINTS else "--grid"
            raise ConfigError(where, f"the sweep has {n:,} runs (grid points x seeds); at most {MAX_POINTS:,} without --allow-large")
        keys = list(self.grid)
        first = self.first_seed()
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            for seed in range(first, first + self.seeds):
                out.append({**dict(zip(keys, combo, strict=True)), "run.seed": seed})
        return out

    def first_seed(self) -> int:
        """The seed of each point's first run: a `run.seed=S` override moves the seeds to S..S+N-1."""
        if "run.seed" in self.grid:
            raise ConfigError("--grid run.seed", "seeds are not a grid key: use --seeds N (and run.seed=S to start at S)")
        given = [o.partition("=")[2].strip() for o in self.overrides if o.partition("=")[0].strip() == "run.seed"]
        if not given:
            return 0
        try:
            return int(given[-1])
        except ValueError:
            raise ConfigError("run.seed", f"must be an integer, got {given[-1]!r}") from None

    def plan(self) -> list[dict[str, Any]]:
        """Every point as {"values": its grid values and seed, "config": its resolved config as data}."""
        out = []
        for point, cfg in zip(self.points(), self.configs(), strict=True):
            data = to_dict(cfg)
            out.append({"values": {k: _lookup(data, k) for k in point}, "config": data})  # values as the config typed them
        return out

    def configs(self) -> list[ExperimentConfig]:
        """Every point's resolved, validated config (an error names the key and the bad value)."""
        if self.seeds < 1:
            raise ConfigError("--seeds", f"must be >= 1, got {self.seeds}")
        if not self.grid and self.seeds == 1 and not self.allow_one:
            raise ConfigError("--grid", "the sweep is empty: give at least one --grid KEY=VALUES or --seeds N > 1")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"--grid {key}", "has no values")
        out = []
        for point in self.points():
            overrides = [*self.overrides, *(f"{k}={v}" for k, v in point.items())]
            cfg = resolve_config(self.preset or None, overrides)
            out.append(cfg)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "overrides": list(self.overrides),
            "grid": {k: [_plain(v) for v in vs] for k, vs in self.grid.items()},
            "seeds": self.seeds,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        return cls(
            data.get("preset", ""),
            list(data.get("overrides", [])),
            {k: list(v) for k, v in data.get("grid", {}).items()},
            int(data.get("seeds", 1)),
            data.get("name", ""),
        )


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _plain(v: Any) -> Any:
    return str(v) if isinstance(v, Raw) else v


def spec_from_cli(
    preset: str | None, overrides: list[str], grid: list[str], seeds: int, name: str = "", allow_one: bool = False
) -> SweepSpec:
    """Build a spec from `groklab sweep` arguments; `--grid KEY=VALUES` may repeat."""
    table: dict[str, list[Any]] = {}
    for item in grid:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--grid", f"{item!r} must look like KEY=VALUES, e.g. optim.weight_decay=0.1,0.3,1")
        if key in table:
            raise ConfigError(f"--grid {key}", "is given twice")
        table[key] = parse_values(key, values)
    return SweepSpec(preset or "", overrides, table, seeds, name, allow_one=allow_one)


EXECUTION_FLAGS = {"max_ensemble": "--max-ensemble", "pad_widths": "--pad-widths", "workers": "--workers"}


def execution_options(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The options a resumed sweep trains with: those it was started with (its spec's `execution`), so the resume
    is the experiment asked for. Grouping options (`max_ensemble`, `pad_widths`) decide which points share an
    ensemble and so the numbers; one given again with another value is refused. `workers` only spreads the
    work, so a new value is taken. A value of None in `given` means not given."""
    out = {k: stored.get(k) for k in EXECUTION_FLAGS}
    for key, value in given.items():
        if value is None:
            continue
        if key != "workers" and key in stored and value != stored[key]:
            flag, was = EXECUTION_FLAGS[key], "auto" if stored[key] is None else stored[key]
            raise ConfigError(flag, f"the sweep was started with {flag} {was}; a resume trains it the same way (got {value})")
        out[key] = value
    out["workers"] = out["workers"] or 1
    return out


def override_strings(overrides: dict[str, Any]) -> list[str]:
    """A mapping of dotted key -> value as the CLI's `key=value` overrides (each value written as YAML)."""
    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in overrides.items()]


def spec_from_yaml(path: str | Path) -> SweepSpec:
    """A sweep file: `preset`, `overrides` (mapping or list), `grid` (key: list or range string), `seeds`, `name`.
    Each field's shape is checked here, so a file of the wrong shape is a one-line error naming the field."""
    data = load_yaml(path)
    where = f"sweep file {str(path)!r}"
    unknown = set(data) - {"preset", "overrides", "grid", "seeds", "name"}
    if unknown:
        raise GroklabError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: preset, overrides, grid, seeds, name")
    overrides = data.get("overrides") or []
    if isinstance(overrides, dict):
        overrides = override_strings(overrides)
    elif not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        allowed = "a mapping of dotted key: value or a list of 'key=value' strings"
        raise GroklabError(f"{where}: overrides must be {allowed}, got {short_repr(overrides)}")
    grid_data = data.get("grid") or {}
    if not isinstance(grid_data, dict):
        raise GroklabError(f"{where}: grid must be a mapping of dotted key: values (a list or a range string), got {short_repr(grid_data)}")
    grid: dict[str, list[Any]] = {}
    for key, values in grid_data.items():
        if not isinstance(key, str) or not key.strip():
            raise GroklabError(f"{where}: grid keys must be dotted config keys, got {key!r}")
        if isinstance(values, dict):
            raise GroklabError(f"{where}: grid {key}: values must be a list, a range string or one value, got a mapping")
        grid[key] = parse_values(key, values) if isinstance(values, str) else list(values if isinstance(values, list) else [values])
    seeds = data.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool):
        raise ConfigError("seeds", f"must be an integer >= 1, got {seeds!r}")
    for field_name in ("preset", "name"):
        value = data.get(field_name, "")
        if not isinstance(value, str):
            raise GroklabError(f"{where}: {field_name} must be a string, got {short_repr(value)}")
    return SweepSpec(str(data.get("preset", "")), list(overrides), grid, seeds, str(data.get("name", "")))
