"""Sweeps: grids of configs and seeds, stored as one entity, run by an executor."""

from groklab.sweeps.local import run_sweep, sweep_status, train_locally
from groklab.sweeps.spec import SweepSpec, parse_values, spec_from_cli, spec_from_yaml

__all__ = ["SweepSpec", "parse_values", "run_sweep", "spec_from_cli", "spec_from_yaml", "sweep_status", "train_locally"]
