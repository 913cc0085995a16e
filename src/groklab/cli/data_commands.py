"""`groklab data`: put the MNIST files where runs look for them, and check them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from groklab.errors import GroklabError

DATASETS = ("mnist",)


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch or check the datasets read from files (MNIST)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("fetch", "download (or --from a local copy) and verify"), ("check", "say where the files are and verify them")):
        q = actions.add_parser(action, help=text)
        q.add_argument("dataset", choices=DATASETS)
        q.add_argument("--dir", default="", help="where the files go / are (default: $GROKLAB_DATA, else ~/.cache/groklab/mnist)")
        if action == "fetch":
            q.add_argument("--from", dest="source", default=None, metavar="DIR", help="copy from a local directory instead of the network")


def cmd_data(ns: argparse.Namespace) -> int:
    from groklab.data import mnist

    directory = mnist.resolve_dir(ns.dir)
    if ns.action == "fetch":
        if ns.source:
            _copy_verified(Path(ns.source).expanduser(), directory)
        else:
            mnist.fetch(directory)
    data = mnist.load(directory)  # verifies checksums and shapes
    sizes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in data.items())
    print(f"MNIST in {directory}: verified ({sizes})")
    return 0


def _copy_verified(source: Path, directory: Path) -> None:
    from groklab.data import mnist

    found = mnist.locate(source)
    mnist.load(source)  # verify before copying anything
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in found.values():
            if path.parent.resolve() != directory.resolve():
                shutil.copy2(path, directory / path.name)
    except OSError as exc:
        raise GroklabError(f"--dir: cannot write to {directory} ({exc.strerror or exc})") from None
