"""Pick the training device: `auto` means CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from groklab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("run.device", f"{name!r} asked for, but CUDA is not available here; use auto or cpu")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError("run.device", f"{name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ConfigError("run.device", "'mps' asked for, but MPS is not available here; use auto or cpu")
    return torch.device(name)
