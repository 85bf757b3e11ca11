"""The package's layout limits (CONTRIBUTING.md): no module over 450 lines, no class over 250 lines."""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "embedfast"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 250


def test_the_package_is_found():
    assert len(MODULES) > 20 and (PACKAGE / "__init__.py") in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_class_sizes(path):
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n") and bool(text))
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines (limit {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.ClassDef):
            n = node.end_lineno - node.lineno + 1
            assert n <= MAX_CLASS_LINES, (f"{path.relative_to(PACKAGE)}:{node.lineno}: class {node.name} is {n} "
                                          f"lines (limit {MAX_CLASS_LINES})")
