"""ResNet-18 (He et al. 2016), the image model that groks on polygon grids in Gu et al. 2025.

The module tree and parameter/buffer names are torchvision's `resnet18` exactly (conv1, bn1,
layer1..layer4 of two BasicBlocks each, `downsample.0/1` where the shape changes, fc), so a
torchvision state_dict loads as is; torchvision itself is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from groklab.errors import ConfigError
from groklab.models.base import MODELS
from groklab.schema import ModelConfig
from groklab.tasks.base import TaskSpec


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: (B, c_in, H, W) -> (B, c_out, H/stride, W/stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None  # a 1x1 projection where the shape changes, as in torchvision
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, c_out, H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (B, c_out, H', W')
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18: stem, four stages of two BasicBlocks (widths w, 2w, 4w, 8w; stages 2-4 halve the
    resolution), global average pool, fc: (B, C, H, W) uint8 or float -> (B, n_classes).

    `small_stem` replaces the 7x7 stride-2 conv1 and the max-pool by a 3x3 stride-1 conv1 (the
    CIFAR variant), so small images are not shrunk 4x before the first block. It changes conv1's
    shape, so torchvision weights only load with the default stem.
    """

    def __init__(self, n_classes: int = 1000, in_channels: int = 3, width: int = 64, small_stem: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        if small_stem:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        widths = [width, 2 * width, 4 * width, 8 * width]
        c_in = width
        for i, c_out in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out)))
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, n_classes)
        for m in self.modules():  # torchvision's init (fc keeps nn.Linear's default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.fc.weight.dtype
        x = x.to(dtype) if x.is_floating_point() else x.to(dtype) / 255.0  # uint8 pixels (compact task storage) -> [0, 1]
        if x.shape[1] == 1 and self.in_channels == 3:  # greyscale into an RGB network (e.g. ImageNet weights)
            x = x.expand(-1, 3, -1, -1)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, w, H/4, W/4); small stem: (B, w, H, W)
        x = self.layer1(x)  # (B, w, ., .)
        x = self.layer2(x)  # (B, 2w, ./2, ./2)
        x = self.layer3(x)  # (B, 4w, ./4, ./4)
        x = self.layer4(x)  # (B, 8w, ./8, ./8)
        x = torch.flatten(self.avgpool(x), 1)  # (B, 8w)
        return self.fc(x)  # (B, n_classes)


# --- pretrained weights --------------------------------------------------------------------------

SHOW = 4  # mismatches named in an error, per kind


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a `module.` (DataParallel) or `model.` (a wrapper module, as in the authors' script)
    prefix that every key carries."""
    for prefix in ("module.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


def load_pretrained(model: ResNet18, path: str) -> list[str]:
    """Load a torchvision-format ResNet-18 state_dict from `path` into `model`; return the names
    kept from the model's own init.

    fc is skipped when its shape differs from the model's (the usual fine-tuning case: ImageNet's
    1000 classes against the task's); `num_batches_tracked` may be absent (older torchvision files).
    Any other missing, unexpected or differently shaped entry is a ConfigError naming the first few."""
    field = "model.pretrained_path"
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(field, f"no such file: {path}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike: the file is not a readable state_dict
        raise ConfigError(field, f"cannot read {path} as a torch state_dict: {' '.join(str(e).split())[:200]}") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(field, f"{path} does not hold a state_dict (a mapping of names to tensors)")
    state = _strip_prefix(state)
    own = model.state_dict()
    fc_w, fc_b = state.get("fc.weight"), state.get("fc.bias")
    other_head = (  # a consistent fc over the same features, for another number of classes
        fc_w is not None
        and fc_b is not None
        and fc_w.dim() == 2
        and fc_w.shape[1] == own["fc.weight"].shape[1]
        and fc_b.shape == fc_w.shape[:1]
        and fc_w.shape != own["fc.weight"].shape
    )
    skip = ["fc.weight", "fc.bias"] if other_head else []
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    differ = [k for k in own if k in state and k not in skip and state[k].shape != own[k].shape]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in differ]
    problems = []
    for kind, names in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if names:
            more = f" (+{len(names) - SHOW} more)" if len(names) > SHOW else ""
            problems.append(f"{kind}: {', '.join(names[:SHOW])}{more}")
    if problems:
        raise ConfigError(field, f"{path} does not fit this ResNet-18 ({'; '.join(problems)})")
    model.load_state_dict({k: state[k] if k in state and k not in skip else v for k, v in own.items()})
    return skip


# --- groklab registration: the config keys `model.*` for name=resnet18 ---------------------------


@dataclass
class ResNet18Config(ModelConfig):
    """ResNet-18 with torchvision's names. `pretrained_path`: a torchvision-format state_dict loaded
    before init_scale (fc skipped if its classes differ); `small_stem` only from scratch (see ResNet18)."""

    name: str = "resnet18"
    in_channels: int = 3  # 3 = torchvision; greyscale images are repeated to 3 channels
    small_stem: bool = False  # 3x3 stride-1 conv1, no max-pool: for small images
    width: int = 64  # base width; stages have width x (1, 2, 4, 8); 64 = torchvision
    pretrained_path: str = ""

    def validate(self) -> None:
        super().validate()
        if self.in_channels < 1:
            raise ConfigError("model.in_channels", f"must be >= 1, got {self.in_channels}")
        if self.width < 1:
            raise ConfigError("model.width", f"must be >= 1, got {self.width}")


def _build(cfg: ResNet18Config, spec: TaskSpec) -> ResNet18:
    if len(spec.image_shape) != 3:
        raise ConfigError("model.name", "resnet18 needs an image task (e.g. polygons)")
    channels = spec.image_shape[0]
    if channels != cfg.in_channels and not (channels == 1 and cfg.in_channels == 3):
        raise ConfigError("model.in_channels", f"the task's images have {channels} channel(s); set model.in_channels={channels}")
    model = ResNet18(spec.n_classes, cfg.in_channels, cfg.width, cfg.small_stem)
    if cfg.pretrained_path:
        load_pretrained(model, cfg.pretrained_path)
    return model


MODELS.register("resnet18", config=ResNet18Config, summary="ResNet-18 on images, torchvision's layout and names (loads its weights)")(
    _build
)
