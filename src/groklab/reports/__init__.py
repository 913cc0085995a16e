"""Self-contained interactive HTML reports of a run, a sweep or a reproduction (`groklab report`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from groklab.errors import GroklabError
from groklab.reports.build import reproduction_page, run_page, sweep_page
from groklab.reports.page import Page
from groklab.store import Store, SweepRecord
from groklab.store.outputs import atomic_path, output_file


def _write(page_of: Callable[[], Page], output: str | Path) -> Path:
    """Check the output path, build the page, write it atomically: a refused or failed report writes nothing."""
    path = output_file(output)
    if path.suffix.lower() not in (".html", ".htm"):
        raise GroklabError(f"--output: a report is an HTML file; name it *.html, not {path.name!r}")
    page = page_of()
    with atomic_path(path) as tmp:
        tmp.write_text(page.html(), encoding="utf-8")
    return path


def write_run_report(store: Store, run_id: str, output: str | Path) -> Path:
    return _write(lambda: run_page(store, run_id), output)


def write_sweep_report(store: Store, sweep: SweepRecord, output: str | Path) -> Path:
    return _write(lambda: sweep_page(store, sweep), output)


def write_reproduction_report(store: Store, out_dir: str | Path, output: str | Path, title: str | None = None) -> Path:
    folder = Path(out_dir)
    return _write(lambda: reproduction_page(store, folder, title or folder.name), output)


def find_reproduction(store: Store, ref: str) -> Path | None:
    """A reproduction's folder from a path holding claims.json, or a name under RUNS_DIR/reproduce
    (`grokfast`, `grokfast-quick`; a paper name alone finds its paper-scale folder, else its quick, else its smoke one)."""
    scales = (store.root / "reproduce" / f"{ref}{suffix}" for suffix in ("", "-quick", "-smoke"))
    for folder in (Path(ref), *scales):
        if (folder / "claims.json").is_file():
            return folder
    return None


__all__ = ["find_reproduction", "write_reproduction_report", "write_run_report", "write_sweep_report"]
