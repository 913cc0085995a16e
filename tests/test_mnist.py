"""MNIST: the IDX reader, verified files, the three subset modes, the deep MLP, bad input, and a tiny
deep-MLP run on a few hundred real images (where the files are present)."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.data import mnist
from groklab.data.idx import read_idx, write_idx
from groklab.errors import GroklabError
from groklab.models import DeepMLP, build_model
from groklab.tasks import TaskSpec
from groklab.tasks.mnist import draw

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "mnist"  # where this repository's CI keeps the real files


def real_mnist_dir() -> Path | None:
    for candidate in (os.environ.get("GROKLAB_DATA"), SHARED):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


REAL = real_mnist_dir()
needs_real = pytest.mark.skipif(REAL is None, reason=f"the real MNIST files are not at {SHARED} or $GROKLAB_DATA")
SMALL = ["task.name=mnist", "model.name=deep_mlp", "measures.enabled=[loss_acc,weight_norm]", "run.device=cpu"]


# ----- IDX -----------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]),
)
def test_idx_round_trip(shape, dtype):
    t = (torch.randn(shape) * 50).to(dtype)
    assert torch.equal(read_idx(write_idx(t)), t)


def test_idx_header_is_big_endian():
    data = write_idx(torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int32))
    assert data[:4] == bytes([0, 0, 0x0C, 2]) and data[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert data[12:16] == bytes([0, 0, 0, 1])  # the first value, big-endian


BAD_IDX = [b"\x01\x00\x08\x01", b"\x00\x00\x08\x02\x00\x00\x00\x02", write_idx(torch.zeros(4, dtype=torch.uint8))[:-1]]


@pytest.mark.parametrize("data", BAD_IDX)
def test_bad_idx_data(data):
    with pytest.raises(GroklabError, match=r"task\.data_dir"):
        read_idx(data, "f")


def write_fake_mnist(directory: Path, n_train: int = 50, n_test: int = 20, gz: bool = True) -> None:
    """IDX files with MNIST's names and small random contents (they cannot pass the checksums)."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    arrays = {
        "train_images": torch.randint(0, 256, (n_train, 28, 28), dtype=torch.uint8, generator=gen),
        "train_labels": torch.arange(n_train, dtype=torch.uint8) % 10,
        "test_images": torch.randint(0, 256, (n_test, 28, 28), dtype=torch.uint8, generator=gen),
        "test_labels": torch.arange(n_test, dtype=torch.uint8) % 10,
    }
    for key, t in arrays.items():
        data = write_idx(t)
        name = mnist.FILES[key].name
        (directory / (f"{name}.gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_gzip_or_raw_files_the_test_writes(tmp_path, gz):
    write_fake_mnist(tmp_path, gz=gz)
    data = mnist.load(tmp_path, verify=False)
    assert data["train_images"].shape == (50, 28, 28) and data["test_labels"].tolist() == [i % 10 for i in range(20)]


def test_checksum_mismatch_names_the_file(tmp_path):
    write_fake_mnist(tmp_path)
    with pytest.raises(GroklabError, match=r"train-images-idx3-ubyte\.gz does not match the official MNIST checksum"):
        mnist.load(tmp_path)


def test_missing_files_say_where_they_go(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(GroklabError, match=r"lacks t10k-labels-idx1-ubyte.*groklab data fetch mnist"):
        mnist.locate(tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("GROKLAB_DATA", str(tmp_path))
    assert mnist.resolve_dir("") == tmp_path / "mnist"  # the files are not directly there
    write_fake_mnist(tmp_path)
    assert mnist.resolve_dir("") == tmp_path
    assert mnist.resolve_dir("/somewhere/else") == Path("/somewhere/else")
    monkeypatch.delenv("GROKLAB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert mnist.resolve_dir("") == tmp_path / "cache" / "groklab" / "mnist"


def test_fetch_verifies_what_it_downloads(tmp_path):
    src = tmp_path / "mirror"
    write_fake_mnist(src)  # a mirror serving wrong files
    with pytest.raises(GroklabError, match="checksum mismatch"):
        mnist.fetch(tmp_path / "dest", mirrors=(src.as_uri() + "/",))
    assert not any(p.suffix == ".gz" for p in (tmp_path / "dest").iterdir())  # nothing unverified kept


@needs_real
def test_real_files_verify_and_fetch_from_a_local_mirror(tmp_path):
    data = mnist.load(REAL)
    assert data["train_images"].shape == (60000, 28, 28) and data["test_images"].shape == (10000, 28, 28)
    counts = torch.bincount(data["test_labels"].long()).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    fetched = mnist.fetch(tmp_path, mirrors=(REAL.as_uri() + "/",))
    assert len(fetched) == 4 and mnist.load(tmp_path)["train_labels"].shape == (60000,)


# ----- subsets -------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 1000))
def test_subset_modes(n, seed):
    labels = torch.arange(1000) % 10
    first = draw(labels, n, "first", seed)
    assert first.tolist() == list(range(n))
    rand = draw(labels, n, "random", seed)
    assert len(set(rand.tolist())) == n and rand.tolist() == sorted(rand.tolist()) and torch.equal(rand, draw(labels, n, "random", seed))
    bal = draw(labels, n, "balanced", seed)
    counts = torch.bincount(labels[bal], minlength=10)
    assert len(set(bal.tolist())) == n and int(counts.max() - counts.min()) <= 1


def test_seeds_change_random_draws():
    labels = torch.arange(1000) % 10
    assert not torch.equal(draw(labels, 100, "random", 0), draw(labels, 100, "random", 1))


# ----- the deep MLP --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2, 4, 12])
def test_deep_mlp_depth_counts_linear_layers(depth):
    model = DeepMLP(784, 10, depth=depth, width=32)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == depth
    assert (linears[0].in_features, linears[-1].out_features) == (784, 10)
    assert all(lin.in_features == 32 for lin in linears[1:])
    assert model(torch.zeros(5, 784)).shape == (5, 10)


def test_init_scale_multiplies_every_parameter():
    spec = TaskSpec(n_classes=10, input_dim=784)
    base_cfg = resolve_config(None, [*SMALL, "model.depth=3", "model.width=16"]).model
    scaled_cfg = resolve_config(None, [*SMALL, "model.depth=3", "model.width=16", "model.init_scale=8"]).model
    torch.manual_seed(0)
    base = build_model(base_cfg, spec)
    torch.manual_seed(0)
    scaled = build_model(scaled_cfg, spec)
    for (name, a), (_, b) in zip(base.named_parameters(), scaled.named_parameters(), strict=True):
        assert torch.allclose(b, 8 * a), name  # weights and biases alike


# ----- bad input and a real run --------------------------------------------------------------------

BAD = [
    (["task.n_train=0"], "task.n_train"),
    (["task.n_train=60001"], "task.n_train"),
    (["task.subset=stratified"], "task.subset"),
    (["task.n_test=10001"], "task.n_test"),
    (["model.depth=1"], "model.depth"),
    (["model.width=0"], "model.width"),
    (["model.init_scale=0"], "model.init_scale"),
    (["model.act=swish"], "model.act"),
    (["model.name=transformer"], "model.name"),
    (["measures.tunnel_threshold=0"], "measures.tunnel_threshold"),
    (["measures.rank_rtol=1.5"], "measures.rank_rtol"),
    (["task.data_dir=/nonexistent/mnist"], "task.data_dir"),
]


@pytest.mark.parametrize("args,field", BAD)
def test_bad_mnist_input(capsys, tmp_path, args, field):
    runs = tmp_path / "runs"
    code = main(["run", *SMALL, f"task.data_dir={REAL or tmp_path}", *args, "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"groklab: error: {field}") and err.count("\n") == 1, err
    assert not runs.exists()


def test_checksum_mismatch_through_the_cli(capsys, tmp_path):
    write_fake_mnist(tmp_path / "data")
    code = main(["run", *SMALL, f"task.data_dir={tmp_path / 'data'}", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "train-images-idx3-ubyte.gz" in err and "checksum" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@needs_real
@pytest.mark.parametrize("subset", ["first", "balanced"])
def test_tiny_deep_mlp_run_learns_mnist(capsys, tmp_path, subset):
    args = [*SMALL, f"task.data_dir={REAL}", "task.n_train=300", f"task.subset={subset}", "task.n_test=1000"]
    args += ["model.depth=4", "model.width=64", "optim.lr=1e-3", "schedule.steps=300", "schedule.batch_size=100", "schedule.eval_every=50"]
    args += ["measures.enabled=[loss_acc,weight_norm,feature_rank,probe]", "measures.every.feature_rank=1", "measures.probe_epochs=2"]
    assert main(["run", *args, "--quiet", "--runs-dir", str(tmp_path)]) == 0
    from groklab.store import Store

    store = Store(tmp_path, create=False)
    run_id = capsys.readouterr().out.strip()
    m = store.metrics(run_id)
    assert m["train_acc"][1][-1] > 0.95 and m["test_acc"][1][-1] > 0.6  # far above chance (0.1)
    assert store.get(run_id).config["task"]["n_train"] == 300
    assert {f"rank/L{i}" for i in range(1, 5)} <= set(m) and "tunnel_length" in m and "probe_acc/L3" in m
    assert m["rank/L4"][1][-1] <= 10  # the 10-way output layer
    events = store.events(run_id)
    assert events["n_stages"][1] >= 1 and "rank_lag/L3" in events
    for kind in ("standard", "stages", "rank", "probes"):
        assert main(["plot", run_id, "--kind", kind, "-o", str(tmp_path / f"{kind}.png"), "--runs-dir", str(tmp_path)]) == 0
        assert (tmp_path / f"{kind}.png").stat().st_size > 0


@needs_real
def test_copy_from_a_local_directory(capsys, tmp_path):
    assert main(["data", "fetch", "mnist", "--from", str(REAL), "--dir", str(tmp_path / "copy")]) == 0
    assert "verified" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "copy").iterdir()} == {f"{f.name}.gz" for f in mnist.FILES.values()}
    shutil.rmtree(tmp_path / "copy")
