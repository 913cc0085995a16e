"""Which configs can train together in one vectorized ensemble (training/stacked.py)."""

from __future__ import annotations

import json

from groklab.config.loading import to_dict
from groklab.models.width_padding import PADDED_FIELDS
from groklab.schema import ExperimentConfig

# Config keys that may differ between the members of one ensemble.
MEMBER_KEYS = (
    ("run", "seed"),
    ("run", "name"),
    ("run", "notes"),
    ("task", "seed"),
    ("optim", "lr"),
    ("optim", "weight_decay"),
    ("model", "init_scale"),
    ("preset",),
)


def shape_key(cfg: ExperimentConfig) -> str:
    """Configs with equal keys can train in one ensemble."""
    data = to_dict(cfg)
    for path in MEMBER_KEYS:
        node = data
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    return json.dumps(data, sort_keys=True)


def pad_key(cfg: ExperimentConfig) -> str | None:
    """Transformer configs with equal keys can train in one ensemble padded to the widest; None: not paddable."""
    if cfg.model.name != "transformer":
        return None
    data = json.loads(shape_key(cfg))
    for name in PADDED_FIELDS:
        data["model"].pop(name, None)
    return json.dumps(data, sort_keys=True)


def can_vectorize(cfg: ExperimentConfig) -> bool:
    """Early stopping would end members at different steps."""
    return cfg.schedule.stop_test_acc is None
