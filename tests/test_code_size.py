"""Code a reader can hold (issue 11, style.md rule 14): no module in src/rigplan over 500 lines and
no function over 60 (its ``def`` line to its last line, docstring included).

``EXEMPT`` lists today's offenders, each with the branch that owns it; a branch removes its
entries as it splits them.  A new offender fails, and so does an entry that is no longer needed
(so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: "path" (a module) or "path:qualified.name" (a function) -> the branch that owns it.
EXEMPT: dict[str, str] = {}


def module_lengths() -> dict[str, int]:
    """Lines of every module under src/rigplan, by path relative to src."""
    return {
        str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted((SRC / "rigplan").rglob("*.py"))
    }


def function_lengths(source: str) -> dict[str, int]:
    """Lines of every function and method in ``source`` (nested ones too), by qualified name."""
    out: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                out[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def offenders() -> dict[str, int]:
    """Every module and function over its limit: key (as in ``EXEMPT``) -> lines."""
    found: dict[str, int] = {}
    for path, lines in module_lengths().items():
        if lines > MAX_MODULE_LINES:
            found[path] = lines
        for name, n in function_lengths((SRC / path).read_text(encoding="utf-8")).items():
            if n > MAX_FUNCTION_LINES:
                found[f"{path}:{name}"] = n
    return found


def test_no_new_long_module_or_function():
    new = {k: v for k, v in offenders().items() if k not in EXEMPT}
    assert new == {}, f"over {MAX_MODULE_LINES} lines a module / {MAX_FUNCTION_LINES} a function: split them"


def test_exemptions_are_still_needed():
    stale = sorted(set(EXEMPT) - set(offenders()))
    assert stale == [], "these are short enough now: remove them from EXEMPT"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("def f():\n    return 1\n", {"f": 2}, id="function"),
        pytest.param("class A:\n    def m(self):\n        pass\n", {"A.m": 2}, id="method"),
        pytest.param("def f():\n    def g():\n        pass\n    return g\n", {"f": 4, "f.g": 2}, id="nested"),
    ],
)
def test_function_lengths_are_counted_def_to_last_line(source, expected):
    assert function_lengths(source) == expected
