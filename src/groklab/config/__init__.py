"""Configs: typed dataclasses, YAML presets, dotted command-line overrides."""

from groklab.config.loading import from_dict, load_yaml, parse_overrides, to_dict
from groklab.config.presets import DEFAULT_PRESET, changes_from_preset, describe_presets, preset_baseline, preset_names, resolve_config
from groklab.config.schema import (
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
