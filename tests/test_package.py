"""Properties of the package's source as a whole: the import graph and patterns that must not come back."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "clearsight"


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs: at module level and inside functions, not under ``if TYPE_CHECKING``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]


def import_graph() -> dict[str, set[str]]:
    """``module -> modules of the package it imports``. Importing ``a.b.c`` also runs the package ``a.b``, so
    that counts as an import of it too (unless it is the importer's own package, which is already loading)."""
    paths = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_pkg = path.name == "__init__.py"
        found: set[str] = set()
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in paths else mod for a in node.names]
            own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
            for t in targets:
                parts = t.split(".")
                found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} - own
        graph[name] = {t for t in found if t in paths and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles_inside_the_package():
    """Arrows point one way (docs/architecture.md): no two modules import each other, however indirectly,
    including imports inside functions."""
    graph = import_graph()
    assert len(graph) > 50 and graph["clearsight.batch"] >= {"clearsight.infer", "clearsight.video"}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]


def _target(node: ast.AST) -> str | None:
    """``name`` or ``obj.attr`` of a Name/Attribute node, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _target(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _truth_tested(tree: ast.AST):
    """Expressions whose truth value is taken: tests of if/while/ternary/assert, operands of and/or/not."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            yield node.test
        elif isinstance(node, ast.BoolOp):
            yield from node.values
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node.operand


def test_no_progress_bar_is_tested_for_truth():
    """``if bar:`` raises TypeError on a tqdm bar without a total (issue: ``select`` on a video crashed)."""
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_text())
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Module))]:
            bars = set()
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    name = _target(node.value.func) or ""
                    if name.split(".")[-1] == "tqdm":
                        bars |= {t for t in map(_target, node.targets) if t}
            for expr in _truth_tested(fn):
                if _target(expr) in bars:
                    bad.append(f"{path.relative_to(ROOT)}:{expr.lineno}: truth test of progress bar {_target(expr)}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_bar_check_finds_the_pattern(tmp_path):
    """The check above can fail: it finds the pattern in a snippet that has it."""
    tree = ast.parse("def f():\n    bar = tqdm(desc='x')\n    if bar:\n        bar.update(1)\n")
    fn = tree.body[0]
    assert [ast.unparse(e) for e in _truth_tested(fn)] == ["bar"]
