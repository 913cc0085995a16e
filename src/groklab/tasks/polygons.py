"""Polygon grids: the image task on which a ResNet-18 groks (Gu et al. 2025, "Beyond Progress Measures").

Each image is a 2x2 grid of cells; each cell is blank or holds a regular polygon with
min_sides..max_sides sides, drawn as in the authors' `data_gen.py`: black outline and spokes from
the centre to every vertex on a white canvas, radius 46/112 of the cell, first vertex pointing right.
The label is the total number of sides (blank = 0). Every combination of cell types is one image,
(max - min + 2)^4 of them (11^4 = 14,641 by default), and a seeded random `train_frac` of them trains.

Each cell type is rendered once, as an anti-aliased tile; images are assembled by indexing the tiles,
so the full set builds in a fraction of a second at 64 px and in a few seconds at the paper's 224 px.
Images stay uint8, (N, 1, H, W): the model converts each batch to float, so 224 px data take 735 MB
instead of 2.9 GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig, TaskConfig
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS

MIN_IMAGE_SIZE = 16  # 8-px cells: the smallest in which a 3..12-gon with spokes still differs from its neighbours
MAX_BYTES = 4 * 2**30  # the whole set lives in memory (and on the training device) as uint8
RADIUS = 46 / 112  # polygon radius as a fraction of the cell, as in the authors' 112-px cells
SUPERSAMPLE = 4  # anti-aliasing: each pixel's grey level is the ink coverage of SUPERSAMPLE^2 sub-pixels


@dataclass
class PolygonsConfig(TaskConfig):
    """2x2 grids of blank cells or regular polygons; label = total sides. `image_size` is the side of the
    square image in pixels (the paper: 224), split into four `image_size // 2` cells."""

    name: str = "polygons"
    image_size: int = 64
    train_frac: float = 0.25
    min_sides: int = 3
    max_sides: int = 12

    def validate(self) -> None:
        if self.image_size < MIN_IMAGE_SIZE:
            raise ConfigError("task.image_size", f"image size too small for the grid: need >= {MIN_IMAGE_SIZE} px, got {self.image_size}")
        if self.image_size % 2:
            raise ConfigError("task.image_size", f"must be even (a 2x2 grid of equal cells), got {self.image_size}")
        for field in ("min_sides", "max_sides"):
            if not 3 <= getattr(self, field) <= 12:
                raise ConfigError(f"task.{field}", f"must be in [3, 12] (triangles to dodecagons), got {getattr(self, field)}")
        if self.min_sides > self.max_sides:
            raise ConfigError("task.min_sides", f"must be <= task.max_sides = {self.max_sides}, got {self.min_sides}")
        n = self.n_images
        if n * self.image_size**2 > MAX_BYTES:
            gib = n * self.image_size**2 / 2**30
            raise ConfigError("task.image_size", f"{n} images of {self.image_size} px would take {gib:.1f} GiB; the limit is 4 GiB")
        if not 0.0 < self.train_frac < 1.0:
            raise ConfigError("task.train_frac", f"must be in (0, 1), got {self.train_frac}")
        if not 0 < int(self.train_frac * n) < n:
            raise ConfigError("task.train_frac", f"{self.train_frac} of {n} images leaves an empty train or test set")

    @property
    def n_types(self) -> int:
        """Cell types: blank, then min_sides..max_sides."""
        return self.max_sides - self.min_sides + 2

    @property
    def n_images(self) -> int:
        return self.n_types**4


def cell_sides(min_sides: int, max_sides: int) -> torch.Tensor:
    """Number of sides of each cell type, (n_types,): [0 (blank), min_sides, ..., max_sides]."""
    return torch.tensor([0, *range(min_sides, max_sides + 1)], dtype=torch.long)


def _segment_distance(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from each point (x, y) (any shape) to the nearest of the segments a[k]-b[k] (K, 2),
    shaped like x. A loop over the few segments keeps memory at the size of x."""
    best = torch.full_like(x, math.inf)  # squared distances
    for (ax, ay), (bx, by) in zip(a.tolist(), b.tolist(), strict=True):
        ux, uy, px, py = bx - ax, by - ay, x - ax, y - ay
        t = ((px * ux + py * uy) / max(ux * ux + uy * uy, 1e-12)).clamp_(0.0, 1.0)  # nearest point on the segment
        best = torch.minimum(best, (px - t * ux).square_() + (py - t * uy).square_())
    return best.sqrt_()


def render_tile(sides: int, cell: int) -> torch.Tensor:
    """One cell, (cell, cell) uint8, white (255) with a black outlined regular `sides`-gon and its
    spokes; blank when sides == 0. Lines are max(1, cell / 112) px wide (the authors': 1 px in 112)."""
    tile = torch.full((cell, cell), 255, dtype=torch.uint8)
    if sides == 0:
        return tile
    n = cell * SUPERSAMPLE
    u = (torch.arange(n, dtype=torch.float32) + 0.5) / SUPERSAMPLE  # sub-pixel centres, in pixels
    yy, xx = torch.meshgrid(u, u, indexing="ij")  # (n, n) each, y down
    c, r = cell / 2, RADIUS * cell
    angles = 2 * math.pi * torch.arange(sides, dtype=torch.float64) / sides
    vertices = torch.stack([c + r * torch.cos(angles), c + r * torch.sin(angles)], dim=1)  # (sides, 2), first one pointing right
    centre = torch.tensor([[c, c]], dtype=torch.float64).expand(sides, 2)
    starts = torch.cat([vertices, centre])  # edges, then spokes: (2*sides, 2)
    ends = torch.cat([vertices.roll(-1, dims=0), vertices])
    ink = _segment_distance(xx, yy, starts, ends) <= max(1.0, cell / 112) / 2  # (n, n)
    coverage = ink.reshape(cell, SUPERSAMPLE, cell, SUPERSAMPLE).float().mean(dim=(1, 3))  # (cell, cell) in [0, 1]
    return torch.round(255 * (1 - coverage)).to(torch.uint8)


def render_tiles(min_sides: int, max_sides: int, cell: int) -> torch.Tensor:
    """Every cell type once, (n_types, cell, cell) uint8, in the order of `cell_sides`."""
    return torch.stack([render_tile(int(k), cell) for k in cell_sides(min_sides, max_sides)])


def grid_types(n_types: int) -> torch.Tensor:
    """Every combination of cell types, (n_types^4, 4) as (top-left, top-right, bottom-left,
    bottom-right), in the row-major order of the authors' four nested loops."""
    t = torch.arange(n_types)
    return torch.cartesian_prod(t, t, t, t)


def assemble(tiles: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """Images (N, 1, 2s, 2s) uint8 from tiles (T, s, s) and per-image cell types (N, 4).

    Every pair of side-by-side tiles is joined once into a strip (T^2 strips of s x 2s); an image is
    then its top strip followed by its bottom strip in memory, so the whole set is one gather."""
    T, s = tiles.shape[0], tiles.shape[-1]
    pairs = torch.cartesian_prod(torch.arange(T), torch.arange(T))  # (T^2, 2) as (left, right)
    strips = torch.cat([tiles[pairs[:, 0]], tiles[pairs[:, 1]]], dim=-1)  # (T^2, s, 2s)
    rows = torch.stack([types[:, 0] * T + types[:, 1], types[:, 2] * T + types[:, 3]], dim=1)  # (N, 2) strip ids, top then bottom
    return strips[rows.reshape(-1)].view(len(types), 1, 2 * s, 2 * s)


def split_indices(n: int, train_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted train and test indices: int(train_frac * n) drawn at random with `seed`, the rest test."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_train = int(train_frac * n)
    return order[:n_train].sort().values, order[n_train:].sort().values


@TASKS.register(
    "polygons",
    config=PolygonsConfig,
    summary="2x2 grids of blank cells or 3..12-gons (Gu et al. 2025), label = total sides, uint8 images",
)
class Polygons(Task):
    """2x2 grids of regular polygons; the label is the total number of sides."""

    cfg: PolygonsConfig
    input_itemsize = 1  # uint8 images, cast batch by batch

    def n_examples(self) -> int:
        return self.cfg.n_images

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        if cfg.model.name != "resnet18":
            raise ConfigError("model.name", f"task 'polygons' needs an image model; choose resnet18, got {cfg.model.name!r}")

    @property
    def spec(self) -> TaskSpec:
        size = self.cfg.image_size
        return TaskSpec(n_classes=4 * self.cfg.max_sides + 1, image_shape=(1, size, size))

    def build(self) -> TaskData:
        c = self.cfg
        tiles = render_tiles(c.min_sides, c.max_sides, c.image_size // 2)
        types = grid_types(c.n_types)  # (N, 4)
        labels = cell_sides(c.min_sides, c.max_sides)[types].sum(dim=1)  # (N,)
        train, test = split_indices(len(types), c.train_frac, c.seed)
        return TaskData(assemble(tiles, types[train]), labels[train], assemble(tiles, types[test]), labels[test])
