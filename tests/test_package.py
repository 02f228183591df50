"""Properties of the package's source as a whole: the import graph and patterns that must not come back."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "clearsight"


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


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
