"""The packages import one way down: zoo < tasks < auto_loader < trainers.

Every import statement of the package (at module level or inside a function: a lazy import is still
a dependency) is read from the source; one that reaches a higher layer fails, naming the file and
line. The models know nothing of tasks, tasks nothing of loading by name, loading nothing of training.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("zoo", "tasks", "auto_loader", "trainers")


def _imports(path: Path, package: str):
    """(imported top-level package, line) for every import in ``path``; relative ones stay in ``package``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield (package if node.level else (node.module or "").split(".")[0]), node.lineno


def test_no_import_goes_up_the_layer_order():
    upward = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported, line in _imports(path, package):
                if imported in LAYERS and LAYERS.index(imported) > rank:
                    upward.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not upward, "imports up the layer order zoo < tasks < auto_loader < trainers:\n" + "\n".join(
        upward
    )


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from trainers.lora import load_adapter\n")
    assert list(_imports(module, "auto_loader")) == [("trainers", 2)]
