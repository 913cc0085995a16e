"""ResNet-18: torchvision's names and shapes, pretrained state_dicts in and out, uint8 greyscale input,
and one-line errors for files that do not fit."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.errors import ConfigError
from groklab.models import ResNet18, build_model
from groklab.models.resnet import ResNet18Config, load_pretrained
from groklab.tasks import TaskSpec


def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")} | {f"{prefix}.num_batches_tracked": ()}


# torchvision.models.resnet18().state_dict(), in order: names and shapes, written out from its architecture.
TORCHVISION_RESNET18: dict[str, tuple[int, ...]] = {
    "conv1.weight": (64, 3, 7, 7),
    **bn("bn1", 64),
    "layer1.0.conv1.weight": (64, 64, 3, 3),
    **bn("layer1.0.bn1", 64),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    **bn("layer1.0.bn2", 64),
    "layer1.1.conv1.weight": (64, 64, 3, 3),
    **bn("layer1.1.bn1", 64),
    "layer1.1.conv2.weight": (64, 64, 3, 3),
    **bn("layer1.1.bn2", 64),
    "layer2.0.conv1.weight": (128, 64, 3, 3),
    **bn("layer2.0.bn1", 128),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    **bn("layer2.0.bn2", 128),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    **bn("layer2.0.downsample.1", 128),
    "layer2.1.conv1.weight": (128, 128, 3, 3),
    **bn("layer2.1.bn1", 128),
    "layer2.1.conv2.weight": (128, 128, 3, 3),
    **bn("layer2.1.bn2", 128),
    "layer3.0.conv1.weight": (256, 128, 3, 3),
    **bn("layer3.0.bn1", 256),
    "layer3.0.conv2.weight": (256, 256, 3, 3),
    **bn("layer3.0.bn2", 256),
    "layer3.0.downsample.0.weight": (256, 128, 1, 1),
    **bn("layer3.0.downsample.1", 256),
    "layer3.1.conv1.weight": (256, 256, 3, 3),
    **bn("layer3.1.bn1", 256),
    "layer3.1.conv2.weight": (256, 256, 3, 3),
    **bn("layer3.1.bn2", 256),
    "layer4.0.conv1.weight": (512, 256, 3, 3),
    **bn("layer4.0.bn1", 512),
    "layer4.0.conv2.weight": (512, 512, 3, 3),
    **bn("layer4.0.bn2", 512),
    "layer4.0.downsample.0.weight": (512, 256, 1, 1),
    **bn("layer4.0.downsample.1", 512),
    "layer4.1.conv1.weight": (512, 512, 3, 3),
    **bn("layer4.1.bn1", 512),
    "layer4.1.conv2.weight": (512, 512, 3, 3),
    **bn("layer4.1.bn2", 512),
    "fc.weight": (1000, 512),
    "fc.bias": (1000,),
}

IMAGE_SPEC = TaskSpec(n_classes=49, image_shape=(1, 16, 16))


def small(**kw) -> ResNet18:
    torch.manual_seed(kw.pop("seed", 0))
    return ResNet18(**{"n_classes": 49, "in_channels": 1, "width": 4, "small_stem": True, **kw})


def save(state: dict[str, torch.Tensor], path) -> str:
    torch.save(state, path)
    return str(path)


def config(**kw) -> ResNet18Config:
    cfg = ResNet18Config(**kw)
    cfg.validate()
    return cfg


# ----- structure -----------------------------------------------------------------------------------


def test_names_and_shapes_are_torchvisions():
    model = ResNet18(n_classes=1000)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(TORCHVISION_RESNET18)  # same names, same order
    assert got == TORCHVISION_RESNET18
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's resnet18 count
    assert isinstance(model.maxpool, torch.nn.MaxPool2d) and model.conv1.stride == (2, 2)


def test_small_stem_changes_only_conv1_and_drops_the_max_pool():
    model = ResNet18(n_classes=1000, small_stem=True)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k for k in got if got[k] != TORCHVISION_RESNET18[k]} == {"conv1.weight"}
    assert got["conv1.weight"] == (64, 3, 3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


@settings(max_examples=12, deadline=None)
@given(
    width=st.integers(1, 6),
    size=st.integers(8, 40),
    small_stem=st.booleans(),
    in_channels=st.sampled_from([1, 3]),
    n_classes=st.integers(2, 60),
    batch=st.integers(1, 3),
)
def test_shapes_follow_width_and_classes(width, size, small_stem, in_channels, n_classes, batch):
    model = ResNet18(n_classes, in_channels, width, small_stem).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["layer4.1.conv2.weight"] == (8 * width, 8 * width, 3, 3) and shapes["fc.weight"] == (n_classes, 8 * width)
    assert shapes["conv1.weight"] == ((width, in_channels, 3, 3) if small_stem else (width, in_channels, 7, 7))
    assert {k.split(".downsample")[0] for k in shapes if "downsample" in k} == {"layer2.0", "layer3.0", "layer4.0"}
    x = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8)
    assert model(x).shape == (batch, n_classes)


def test_init_is_torchvisions():
    torch.manual_seed(0)
    model = ResNet18(n_classes=10)
    w = model.layer4[0].conv2.weight.detach()  # kaiming normal, fan_out, relu: std sqrt(2 / (512 * 3 * 3))
    assert abs(float(w.std()) - (2 / (512 * 9)) ** 0.5) < 0.03 * (2 / (512 * 9)) ** 0.5
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 20 and all(bool((b.weight == 1).all() and (b.bias == 0).all()) for b in bns)


# ----- inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_channels", [1, 3])
def test_uint8_greyscale_equals_scaled_float(in_channels):
    model = small(in_channels=in_channels).eval()
    x = torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8)
    float_x = (x.float() / 255).expand(-1, in_channels, -1, -1)
    torch.testing.assert_close(model(x), model(float_x))
    assert not torch.allclose(model(x), model(x.float()))  # a float input is taken as is, not rescaled
    model.double()
    assert model(x).dtype == torch.float64  # uint8 goes to the parameters' dtype


# ----- building and pretrained weights -------------------------------------------------------------


def test_builder_needs_an_image_task():
    with pytest.raises(ConfigError, match=r"^model\.name: resnet18 needs an image task \(e\.g\. polygons\)$"):
        build_model(config(), TaskSpec(n_classes=10, input_dim=784))
    with pytest.raises(ConfigError, match=r"^model\.in_channels"):
        build_model(config(in_channels=2), IMAGE_SPEC)
    model = build_model(config(width=4, small_stem=True), IMAGE_SPEC)
    assert model.fc.out_features == 49 and model.conv1.in_channels == 3  # greyscale repeated into 3 channels


def test_state_dict_round_trips_through_pretrained_path(tmp_path):
    src = small(seed=1).train()
    src(torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8))  # move the BatchNorm running statistics
    path = save(src.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(2)
    model = build_model(config(in_channels=1, width=4, small_stem=True, pretrained_path=path), IMAGE_SPEC)
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(model.eval()(x), src.eval()(x), rtol=0, atol=0)
    torch.manual_seed(2)
    scaled = build_model(config(in_channels=1, width=4, small_stem=True, pretrained_path=path, init_scale=2.0), IMAGE_SPEC)
    for (k, p), (_, q) in zip(model.named_parameters(), scaled.named_parameters(), strict=True):
        assert torch.equal(q, 2 * p), k  # init_scale applies after loading


def test_another_head_is_skipped_and_prefixes_and_old_files_load(tmp_path):
    imagenet = ResNet18(n_classes=1000, width=4)
    state = {f"model.{k}": v for k, v in imagenet.state_dict().items() if not k.endswith("num_batches_tracked")}  # the authors' wrapper
    model = small(in_channels=3, small_stem=False)
    fresh_fc = model.fc.weight.detach().clone()
    assert load_pretrained(model, save(state, tmp_path / "w.pt")) == ["fc.weight", "fc.bias"]
    assert torch.equal(model.fc.weight, fresh_fc) and model.fc.out_features == 49
    assert torch.equal(model.layer3[0].downsample[0].weight, imagenet.layer3[0].downsample[0].weight)
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)


def broken(state: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    state = dict(state)
    if kind == "missing":
        del state["layer4.1.bn2.weight"]
    elif kind == "unexpected":
        state["layer5.0.conv1.weight"] = torch.zeros(1)
    elif kind == "shape":
        state["layer2.0.conv1.weight"] = torch.zeros(9, 4, 3, 3)
    return state


@pytest.mark.parametrize(
    "kind,words",
    [
        ("missing", "missing: layer4.1.bn2.weight"),
        ("unexpected", "unexpected: layer5.0.conv1.weight"),
        ("shape", "shape: layer2.0.conv1.weight (9, 4, 3, 3) vs (8, 4, 3, 3)"),
    ],
)
def test_mismatched_files_name_the_mismatches_in_one_line(tmp_path, kind, words):
    path = save(broken(small().state_dict(), kind), tmp_path / "w.pt")
    with pytest.raises(ConfigError) as e:
        load_pretrained(small(), path)
    assert str(e.value).startswith("model.pretrained_path: ") and words in str(e.value) and "\n" not in str(e.value)


def test_many_mismatches_are_summarized(tmp_path):
    path = save(ResNet18(n_classes=49, in_channels=1, width=8, small_stem=True).state_dict(), tmp_path / "w.pt")  # twice as wide
    with pytest.raises(ConfigError, match=r"shape: conv1\.weight \(8, 1, 3, 3\) vs \(4, 1, 3, 3\), .* \(\+\d+ more\)") as e:
        load_pretrained(small(), path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "w.pt"
    if content is None:
        torch.save([1, 2, 3], path)  # readable, but not a state_dict
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"^model\.pretrained_path: ") as e:
        load_pretrained(small(), str(path))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="no such file"):
        load_pretrained(small(), str(tmp_path / "absent.pt"))


def test_mismatched_file_through_the_cli(capsys, tmp_path):
    path = save(ResNet18(n_classes=49, in_channels=1, width=8, small_stem=True).state_dict(), tmp_path / "w.pt")
    runs = tmp_path / "runs"
    args = [
        "task.name=polygons",
        "task.image_size=16",
        "model.name=resnet18",
        "model.in_channels=1",
        "model.width=4",
        "model.small_stem=true",
    ]
    code = main(["run", *args, f"model.pretrained_path={path}", "measures.enabled=[loss_acc]", "run.device=cpu", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("groklab: error: model.pretrained_path") and "conv1.weight" in err and err.count("\n") == 1, err
    assert not runs.exists()


def test_modular_task_refuses_resnet(capsys, tmp_path):
    code = main(["run", "model.name=resnet18", "run.device=cpu", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("groklab: error: model.name") and err.count("\n") == 1, err
