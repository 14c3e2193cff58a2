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


# -- no import circle -------------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in LAYERS for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {module of the package it imports: line}; ``from pkg import name`` reaches ``pkg.name``
    when that is a module, else ``pkg`` (its ``__init__``). Lazy imports count."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, path, node)
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            for target in targets:
                if target in modules and target != module:
                    edges.setdefault(target, node.lineno)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circle():
    modules = _modules()
    graph = import_graph(modules)
    cycle = find_cycle(graph)
    if cycle:
        steps = [
            f"{a} ({modules[a].relative_to(ROOT)}:{graph[a][b]}) imports {b}"
            for a, b in zip(cycle, cycle[1:])
        ]
        raise AssertionError("import circle:\n" + "\n".join(steps))


def test_the_cycle_check_finds_a_circle_through_a_lazy_import(tmp_path):
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 7}, "d": {"a": 2}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None
