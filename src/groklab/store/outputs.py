"""Files groklab writes for the user (exports, reports): the path checked before any work starts, and the
file written under a temporary name beside it and renamed into place, so a failed write leaves what was there."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from groklab.errors import GroklabError


def output_file(path: str | Path, flag: str = "--output") -> Path:
    """`path` as a file groklab may write: its folder exists and is writable, and it is not itself a folder."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise GroklabError(f"{flag}: {p} is a folder; give a file name")
    if not parent.exists():
        raise GroklabError(f"{flag}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise GroklabError(f"{flag}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise GroklabError(f"{flag}: the folder {parent} is not writable")
    _check_can_create(_temporary_folder(p), flag)
    return p


def output_folder(path: str | Path, flag: str = "--output") -> Path:
    """`path` as a folder groklab may create (with its missing parents) or write into."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise GroklabError(f"{flag}: {p} is a file; give a folder")
    existing = p
    while not existing.exists():  # the nearest folder that exists must be one groklab can write in
        existing = existing.parent
    if not existing.is_dir():
        raise GroklabError(f"{flag}: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise GroklabError(f"{flag}: the folder {existing} is not writable")
    _check_can_create(existing, flag)
    return p


def _check_can_create(folder: Path, flag: str) -> None:
    """Make and remove a file in `folder`: os.access says yes to root everywhere, also where no file can be made
    (/proc, /sys, a read-only mount), and the output would fail only after the work."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".groklab-check.", dir=folder)
    except OSError as exc:
        raise GroklabError(f"{flag}: cannot create files in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def _temporary_folder(path: Path) -> Path:
    """Where atomic_path makes `path`'s temporary file: beside it, or for a device or pipe in the temp folder."""
    if path.exists() and not path.is_file():
        return Path(tempfile.gettempdir())
    return path.parent if str(path.parent) else Path(".")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed when it fails. A path
    that exists and is not a regular file (/dev/stdout, a pipe, /dev/full) is never replaced or removed: the
    output is made in a temporary file, then copied into it. A write that fails (a full disk) is one line
    naming the file."""
    device = path.exists() and not path.is_file()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_temporary_folder(path))
    except OSError as exc:
        raise GroklabError(f"cannot write {path} ({exc.strerror or exc}); what was there is unchanged") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the output gets the mode any new file would
    try:
        yield Path(tmp)
        if device:
            with open(tmp, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        if isinstance(exc, OSError):
            raise GroklabError(f"cannot write {path} ({exc.strerror or exc}); what was there is unchanged") from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
