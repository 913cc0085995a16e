"""The MNIST files: where they live, their official checksums, reading them, and fetching them.

groklab never downloads during a run: the four IDX files must be in a directory (task.data_dir,
else $GROKLAB_DATA or $GROKLAB_DATA/mnist, else ~/.cache/groklab/mnist), gzipped or raw, and are
verified against the official checksums before use. `groklab data fetch mnist` puts them there
where the network allows.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from groklab.data.idx import read_idx
from groklab.errors import GroklabError


@dataclass(frozen=True)
class MnistFile:
    name: str  # without .gz
    sha256_gz: str  # of the official .gz
    sha256_raw: str  # of its decompressed contents
    shape: tuple[int, ...]


FILES = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}

# The standard mirrors (torchvision's list): the original site, then a copy on S3.
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


def default_dir() -> Path:
    """$GROKLAB_DATA (or its mnist/ folder, if that is where the files are), else the user cache."""
    env = os.environ.get("GROKLAB_DATA")
    if env:
        base = Path(env).expanduser()
        return base if _find(base, FILES["train_images"]) else base / "mnist"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "groklab" / "mnist"


def resolve_dir(data_dir: str) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_dir()


def _find(directory: Path, f: MnistFile) -> Path | None:
    for candidate in (directory / f"{f.name}.gz", directory / f.name):
        if candidate.is_file():
            return candidate
    return None


def where_to_put(directory: Path) -> str:
    names = ", ".join(f"{f.name}[.gz]" for f in FILES.values())
    return (
        f"put the four MNIST IDX files ({names}) in {directory}, or point task.data_dir or $GROKLAB_DATA at a directory "
        "that holds them, or run `groklab data fetch mnist`"
    )


def locate(directory: Path) -> dict[str, Path]:
    """The four files in `directory`, or a one-line error naming what is missing and what to do."""
    if not directory.is_dir():
        raise GroklabError(f"task.data_dir: no MNIST directory at {directory}; {where_to_put(directory)}")
    found = {key: _find(directory, f) for key, f in FILES.items()}
    missing = [FILES[k].name for k, p in found.items() if p is None]
    if missing:
        raise GroklabError(f"task.data_dir: {directory} lacks {', '.join(missing)}; {where_to_put(directory)}")
    return {k: p for k, p in found.items() if p is not None}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bytes(path: Path, f: MnistFile, raw: bytes, stored: bytes) -> None:
    """Accept the official .gz, or any file whose decompressed contents are the official ones."""
    if path.suffix == ".gz" and _sha256(stored) == f.sha256_gz:
        return
    if _sha256(raw) != f.sha256_raw:
        raise GroklabError(
            f"task.data_dir: {path} does not match the official MNIST checksum (sha256 {f.sha256_raw[:12]}... decompressed); "
            "replace it with the official file (`groklab data fetch mnist` downloads and verifies them)"
        )


@lru_cache(maxsize=8)
def _load_file(path: str, size: int, mtime_ns: int, key: str, verify: bool) -> torch.Tensor:
    """One verified IDX file as a uint8 tensor; cached per process by path, size and mtime."""
    p = Path(path)
    stored = p.read_bytes()
    try:
        raw = gzip.decompress(stored) if p.suffix == ".gz" else stored
    except (OSError, EOFError) as exc:
        raise GroklabError(f"task.data_dir: {p} is not a readable gzip file ({exc})") from None
    if verify:
        check_bytes(p, FILES[key], raw, stored)
    tensor = read_idx(raw, str(p))
    if verify and tuple(tensor.shape) != FILES[key].shape:
        raise GroklabError(f"task.data_dir: {p} holds shape {tuple(tensor.shape)}, expected {FILES[key].shape}")
    return tensor


def load(directory: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """The four MNIST arrays as uint8 tensors: train_images (60000, 28, 28), train_labels, test_images, test_labels.

    `verify=False` skips the checksums and shapes (for a small IDX set a test writes)."""
    out = {}
    for key, path in locate(directory).items():
        st = path.stat()
        out[key] = _load_file(str(path), st.st_size, st.st_mtime_ns, key, verify)
    return out


def fetch(directory: Path, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 60.0) -> list[Path]:
    """Download the four .gz files into `directory` from the first mirror that serves each, verifying
    each against the official checksum before it is moved into place. Files already there and valid are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for f in FILES.values():
        target = directory / f"{f.name}.gz"
        if target.is_file() and _sha256(target.read_bytes()) == f.sha256_gz:
            done.append(target)
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{f.name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    blob = resp.read()
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            if _sha256(blob) != f.sha256_gz:
                errors.append(f"{url}: checksum mismatch")
                continue
            with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
                tmp.write(blob)
            shutil.move(tmp.name, target)
            done.append(target)
            break
        else:
            raise GroklabError(f"data fetch: could not download {f.name}.gz ({'; '.join(errors)}); {where_to_put(directory)}")
    return done
