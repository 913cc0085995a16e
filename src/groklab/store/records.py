"""A run's record as it is created: its row in the store, its resolved config.yaml and its preset."""

from __future__ import annotations

from typing import Any

import yaml

from groklab.config.loading import safe_yaml, to_dict
from groklab.config.presets import preset_baseline
from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig
from groklab.store.db import DamagedError, Store
from groklab.store.protocol import RunStore
from groklab.version import __version__

PRESET_FILE = "preset.yaml"  # beside config.yaml: the run's preset as it resolved when the run was created


def create_run(store: RunStore, cfg: ExperimentConfig, device: str, sweep: tuple[str, int] | None = None) -> str:
    """The run's row (linked to point `sweep[1]` of sweep `sweep[0]`, if given) and its resolved config.yaml."""
    run_id = store.create_run(to_dict(cfg), cfg.run.name, cfg.preset, __version__, device, sweep)
    store.write_file(run_id, "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    baseline = preset_baseline(cfg.preset)
    if baseline is not None:  # the preset as it is today, so `groklab runs` shows this run's own changes later
        store.write_file(run_id, PRESET_FILE, yaml.safe_dump(baseline, sort_keys=False))
    return run_id


def preset_then(store: Store, run_id: str) -> dict[str, Any] | None:
    """The run's preset as it resolved when the run was created (None for runs made before it was saved); a
    preset.yaml that is not the mapping groklab wrote is a DamagedError naming it."""
    text = store.read_file(run_id, PRESET_FILE)
    if not text:
        return None
    where = store.run_dir(run_id) / PRESET_FILE
    try:
        data = safe_yaml(text, str(where))
    except (yaml.YAMLError, ConfigError) as exc:
        problem = str(exc).splitlines()[0] if isinstance(exc, ConfigError) else "it is not YAML groklab reads"
        raise DamagedError(run_id, f"run {run_id}: {where} is damaged ({problem})") from None
    if not isinstance(data, dict):
        raise DamagedError(run_id, f"run {run_id}: {where} is damaged (a {type(data).__name__}, not a mapping of sections)")
    return data
