"""Polygon grids: each tile is the polygon it claims, each image is its four tiles and its label their
sides, the split is seeded, disjoint and complete, bad input is one line, and a tiny ResNet run trains."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.errors import ConfigError
from groklab.tasks import TaskData, build_task
from groklab.tasks.polygons import RADIUS, PolygonsConfig, cell_sides, grid_types, render_tile, render_tiles, split_indices

SMALL = ["task.name=polygons", "model.name=resnet18", "measures.enabled=[loss_acc,weight_norm]", "run.device=cpu"]


def polygons(**kw) -> tuple[PolygonsConfig, TaskData]:
    cfg = PolygonsConfig(**kw)
    cfg.validate()
    return cfg, build_task(cfg).build()


def dark_runs(tile: torch.Tensor, radius: float, samples: int = 2000) -> int:
    """Inked stretches met walking once around a circle of `radius` px about the tile's centre (a
    1-px line may straddle two pixels, each half grey)."""
    c = tile.shape[0] / 2
    a = torch.arange(samples, dtype=torch.float64) * 2 * math.pi / samples
    x = (c + radius * torch.cos(a)).floor().long()
    y = (c + radius * torch.sin(a)).floor().long()
    dark = (tile[y, x] < 250).int()
    return int((dark - dark.roll(1)).clamp(min=0).sum())  # light -> dark transitions, circularly


def cell_types_of(images: torch.Tensor, tiles: torch.Tensor) -> torch.Tensor:
    """Recover each image's four cell types (N, 4) by matching its quadrants against the tiles; assert
    every quadrant is exactly one of the tiles."""
    n, s = len(images), tiles.shape[-1]
    quads = images[:, 0].reshape(n, 2, s, 2, s).permute(0, 1, 3, 2, 4).reshape(n, 4, s * s).double()  # (N, 4, s*s) TL, TR, BL, BR
    flat = tiles.reshape(len(tiles), s * s).double()
    probe = torch.randn(s * s, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    types = ((quads @ probe)[..., None] - (flat @ probe)).abs().argmin(-1)  # (N, 4) nearest tile by a random projection
    assert torch.equal(quads, flat[types]), "a quadrant is not any tile"
    return types


# ----- tiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sides", range(3, 13))
def test_tile_is_a_regular_polygon_with_spokes(sides):
    tile = render_tile(sides, 112)  # the authors' cell size
    r = RADIUS * 112
    assert tile.shape == (112, 112) and tile.dtype == torch.uint8
    assert dark_runs(tile, 0.4 * r) == sides  # one spoke per vertex (inside every polygon's inscribed circle, >= r/2)
    assert dark_runs(tile, 1.1 * r) == 0 and tile[0].min() == 255  # nothing outside the circumscribed circle
    for j in range(sides):  # every vertex is inked (just inside its tip), the first one pointing right
        a = 2 * math.pi * j / sides
        assert tile[math.floor(56 + (r - 1) * math.sin(a)), math.floor(56 + (r - 1) * math.cos(a))] < 200
    mid = math.pi / sides  # between two spokes, inside the polygon: white fill
    assert tile[math.floor(56 + 0.4 * r * math.sin(mid)), math.floor(56 + 0.4 * r * math.cos(mid))] == 255


@pytest.mark.parametrize("cell", [8, 16, 32, 112])
def test_tiles_are_distinct_at_every_size(cell):
    tiles = render_tiles(3, 12, cell)
    assert tiles.shape == (11, cell, cell) and bool((tiles[0] == 255).all())  # type 0 is blank
    flat = tiles.reshape(11, -1)
    assert all(not torch.equal(flat[i], flat[j]) for i in range(11) for j in range(i))
    assert cell_sides(3, 12).tolist() == [0, *range(3, 13)]


# ----- images, labels and the split ----------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    half=st.integers(8, 24),
    sides=st.tuples(st.integers(3, 12), st.integers(3, 12)).map(sorted),
    frac=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31 - 1),
)
def test_images_are_their_tiles_and_labels_are_total_sides(half, sides, frac, seed):
    lo, hi = sides
    n = (hi - lo + 2) ** 4
    if not 0 < int(frac * n) < n:
        with pytest.raises(ConfigError, match="empty train or test set"):
            PolygonsConfig(image_size=2 * half, min_sides=lo, max_sides=hi, train_frac=frac).validate()
        return
    cfg, data = polygons(image_size=2 * half, min_sides=lo, max_sides=hi, train_frac=frac, seed=seed)
    tiles = render_tiles(lo, hi, half)
    assert data.train_x.shape == (int(frac * n), 1, 2 * half, 2 * half) and data.test_x.shape == (n - int(frac * n), 1, 2 * half, 2 * half)
    assert data.train_x.dtype == data.test_x.dtype == torch.uint8 and data.train_y.dtype == torch.long
    sides_of = cell_sides(lo, hi)
    seen = []
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        types = cell_types_of(x, tiles)
        assert torch.equal(y, sides_of[types].sum(1))  # label = total number of sides, blank = 0
        seen.append({tuple(t) for t in types.tolist()})
    assert len(seen[0]) == len(data.train_x) and len(seen[1]) == len(data.test_x)  # no combination twice
    assert not seen[0] & seen[1]  # disjoint ...
    assert seen[0] | seen[1] == {tuple(t) for t in grid_types(hi - lo + 2).tolist()}  # ... and complete
    spec = build_task(cfg).spec
    assert spec.n_classes == 4 * hi + 1 and spec.image_shape == (1, 2 * half, 2 * half)
    assert int(torch.cat([data.train_y, data.test_y]).max()) == 4 * hi  # four max-gons: the last class


def test_default_set_is_the_papers():
    cfg, data = polygons(image_size=16)
    assert (len(data.train_y), len(data.test_y)) == (3660, 10981)  # 25% of 11^4, as the authors' random_split
    labels = torch.cat([data.train_y, data.test_y])
    assert int(labels.min()) == 0 and int(labels.max()) == 48 and build_task(cfg).spec.n_classes == 49
    assert torch.bincount(labels, minlength=49)[[0, 1, 2, 48]].tolist() == [1, 0, 0, 1]  # 1 and 2 sides cannot occur


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 5000), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**31 - 1))
def test_split_is_seeded_disjoint_complete_and_sized(n, frac, seed):
    train, test = split_indices(n, frac, seed)
    assert len(train) == int(frac * n) and torch.equal(torch.cat([train, test]).sort().values, torch.arange(n))
    assert train.tolist() == sorted(train.tolist()) and test.tolist() == sorted(test.tolist())
    again = split_indices(n, frac, seed)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])


def test_build_is_deterministic_and_the_split_follows_task_seed():
    _, a = polygons(image_size=24, seed=3)
    _, b = polygons(image_size=24, seed=3)
    _, c = polygons(image_size=24, seed=4)
    for t, u in zip((a.train_x, a.train_y, a.test_x, a.test_y), (b.train_x, b.train_y, b.test_x, b.test_y), strict=True):
        assert torch.equal(t, u)
    assert len(c.train_y) == len(a.train_y) and not torch.equal(a.train_y, c.train_y)


# ----- bad input and a tiny run --------------------------------------------------------------------

BAD = [
    (["task.image_size=14"], "task.image_size", "too small"),
    (["task.image_size=33"], "task.image_size", "even"),
    (["task.image_size=1000"], "task.image_size", "GiB"),
    (["task.min_sides=2"], "task.min_sides", "[3, 12]"),
    (["task.max_sides=13"], "task.max_sides", "[3, 12]"),
    (["task.min_sides=8", "task.max_sides=5"], "task.min_sides", "max_sides"),
    (["task.train_frac=0"], "task.train_frac", "(0, 1)"),
    (["task.train_frac=1.0"], "task.train_frac", "(0, 1)"),
    (["task.min_sides=12", "task.train_frac=0.01"], "task.train_frac", "empty"),  # 16 images: none would train
    (["model.name=deep_mlp"], "model.name", "resnet18"),
    (["model.width=0"], "model.width", ">= 1"),
    (["model.in_channels=2"], "model.in_channels", "1 channel"),
    (["model.pretrained_path=/nonexistent/resnet18.pth"], "model.pretrained_path", "no such file"),
    (["measures.enabled=[loss_acc,med]"], "measures.enabled", "MED"),
    (["measures.enabled=[loss_acc,med]"], "measures.enabled", "drop it, e.g. measures.enabled=[loss_acc]"),  # says the fix
]


@pytest.mark.parametrize("args,field,words", BAD)
def test_bad_polygons_input(capsys, tmp_path, args, field, words):
    runs = tmp_path / "runs"
    code = main(["run", *SMALL, "task.image_size=16", "model.width=4", *args, "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"groklab: error: {field}") and err.count("\n") == 1, err
    assert words in err, err
    assert not runs.exists()


def test_validate_rejects_what_the_cli_rejects():
    with pytest.raises(ConfigError, match="image size too small for the grid"):
        PolygonsConfig(image_size=8).validate()


def test_tiny_resnet_run_on_polygons(capsys, tmp_path):
    args = [*SMALL, "task.image_size=16", "task.min_sides=10", "task.max_sides=12", "task.train_frac=0.5"]  # 4^4 = 256 images
    args += ["model.in_channels=1", "model.width=4", "model.small_stem=true", "optim.weight_decay=0.0001", "optim.name=adam"]
    args += [
        "schedule.steps=8",
        "schedule.batch_size=32",
        "schedule.eval_every=4",
        "schedule.eval_batch_size=64",
        "schedule.checkpoint_every=8",
    ]
    assert main(["run", *args, "--quiet", "--runs-dir", str(tmp_path)]) == 0
    from groklab.store import Store

    store = Store(tmp_path, create=False)
    run_id = capsys.readouterr().out.strip()
    assert store.get(run_id).status == "finished"
    m = store.metrics(run_id)
    assert m["test_acc"][0] == [0, 4, 8] and len(m["train_acc"][1]) == 3
    assert all(0.0 <= a <= 1.0 for a in m["test_acc"][1]) and all(math.isfinite(v) for v in m["train_loss"][1])
    assert "weight_norm/layer4.1.conv2.weight" in m and "weight_norm/fc.weight" in m
    assert store.get(run_id).config["model"]["name"] == "resnet18"
