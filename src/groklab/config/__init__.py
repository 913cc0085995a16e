"""Configs resolved: YAML presets and files, dotted command-line overrides, checked into the typed dataclasses of
groklab/schema.py (re-exported here). Above the registries, which say what each task, model and measure takes."""

from groklab.config.loading import from_dict, load_yaml, parse_overrides, to_dict
from groklab.config.presets import DEFAULT_PRESET, changes_from_preset, describe_presets, preset_baseline, preset_names, resolve_config
from groklab.schema import (
    EventsConfig,
    ExperimentConfig,
    GrokfastConfig,
    MeasuresConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TaskConfig,
)

__all__ = [
    "DEFAULT_PRESET",
    "EventsConfig",
    "ExperimentConfig",
    "GrokfastConfig",
    "MeasuresConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ScheduleConfig",
    "TaskConfig",
    "changes_from_preset",
    "describe_presets",
    "from_dict",
    "load_yaml",
    "parse_overrides",
    "preset_baseline",
    "preset_names",
    "resolve_config",
    "to_dict",
]
