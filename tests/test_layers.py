"""groklab's layers only import downward: a module may import its own layer and the layers below it.

Every import counts, those inside functions too (a lazy import is still a dependency). The layers are
listed in docs/architecture.md; this list and that page change together."""

from __future__ import annotations

import ast
from pathlib import Path

import groklab

# Bottom first. A module belongs to the longest prefix that names it.
LAYERS: list[tuple[str, ...]] = [
    ("groklab.errors", "groklab.version", "groklab.registry", "groklab.jsonsafe", "groklab.dtypes"),
    ("groklab.schema",),
    ("groklab.data",),
    ("groklab.tasks",),
    ("groklab.models",),
    ("groklab.losses",),
    ("groklab.measures",),
    ("groklab.config",),  # loading and presets: the resolve step, which reads the registries above the schema
    ("groklab.store",),
    ("groklab.analysis",),
    ("groklab.training",),
    ("groklab.sweeps",),
    ("groklab.plots",),
    ("groklab.reports",),
    ("groklab.reproductions",),
    ("groklab.api", "groklab"),  # the package's __init__ re-exports the API
    ("groklab.cli", "groklab.__main__"),
]
SRC = Path(groklab.__file__).parent


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    assert layer >= 0, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The groklab modules `path` imports (`from groklab.x import y` counts as groklab.x.y when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "groklab":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                where = SRC.parent / sub.replace(".", "/")
                found.add(sub if where.with_suffix(".py").exists() or where.is_dir() else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "groklab"}
    return found


def back_edges() -> list[str]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        mod = module_name(path)
        for target in sorted(imports(path)):
            if layer_of(target) > layer_of(mod):
                edges.append(f"{mod} imports {target}")
    return edges


def test_no_module_imports_from_a_layer_above_it():
    assert back_edges() == []


def test_the_walker_sees_a_back_edge(tmp_path, monkeypatch):
    """The check can fail: a measure importing the trainer, even inside a function, is reported."""
    fake = tmp_path / "groklab"
    (fake / "measures").mkdir(parents=True)
    (fake / "training").mkdir()
    (fake / "measures" / "bad.py").write_text("def f():\n    from groklab.training import loop\n")
    (fake / "training" / "loop.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert back_edges() == ["groklab.measures.bad imports groklab.training.loop"]
