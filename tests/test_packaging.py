"""Every third-party module the package imports is declared in pyproject.toml (core or an extra),
so `pip install .` or `pip install 'rigplan[...]'` on a bare machine has what it needs."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import name → distribution name where they differ; transitive dependencies of a declared
# distribution are named with it (pydantic and starlette come with fastapi).
DISTRIBUTION = {"pynvml": "nvidia-ml-py", "pydantic": "fastapi", "starlette": "fastapi"}


def _imported_modules() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src" / "rigplan").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("rigplan", "__future__")}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_every_third_party_import_is_declared():
    declared = _declared()
    missing = {m for m in _imported_modules() if DISTRIBUTION.get(m, m).lower().replace("_", "-") not in declared}
    assert not missing, f"imported but not in pyproject.toml: {sorted(missing)}"
