"""The training core stays pure: importing it loads no UI library (style rule 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


def test_training_core_imports_no_ui_libraries():
    code = (
        "import sys, rigplan.training, rigplan.training.fit;"
        "bad = [m for m in ('typer', 'rich', 'click', 'fastapi', 'numpy') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


SRC = Path(__file__).resolve().parents[2] / "src"


def _file(module: str) -> Path:
    base = SRC.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _rigplan_imports(module: str) -> set[str]:
    """The rigplan modules ``module`` imports (lazy ones too); ``from pkg import sub`` is ``pkg.sub``."""
    path = _file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = {f"{target}.{a.name}" for a in node.names}
            found |= {m for m in subs if _file(m).is_file()} or {target}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("rigplan")}


def test_the_pure_seam_imports_no_name_resolution():
    """``core.evaluate_training`` calls :func:`estimate_training_for`, which must not reach the
    edge (``rigplan.edge`` resolves names, files and the user's calibration) through its imports."""
    seen, todo = set(), ["rigplan.training.evaluate"]
    while todo:
        name = todo.pop()
        if name in seen or not _file(name).is_file():
            continue
        seen.add(name)
        todo += sorted(_rigplan_imports(name) - seen)
    assert {"rigplan.edge", "rigplan.training.estimate"} & seen == set()


def test_the_pure_seam_gives_the_public_result():
    from rigplan.catalog import load_catalog
    from rigplan.rig import parse_rig
    from rigplan.training import estimate_training
    from rigplan.training.evaluate import estimate_training_for
    from rigplan.training.settings import TrainingSettings

    catalog = load_catalog()
    kw = {"method": "full", "zero_stage": 3, "activation_checkpointing": True, "tokens": 1e9}
    public = estimate_training("llama-3-8b", "8x h100-sxm", **kw)
    pure = estimate_training_for(
        catalog.models["llama-3-8b"], parse_rig("8x h100-sxm", catalog), TrainingSettings.from_mapping(kw), catalog
    )
    assert pure.to_dict() == public.to_dict()


def test_an_unknown_setting_names_the_nearest():
    import pytest

    from rigplan.errors import InvalidValueError
    from rigplan.training.settings import TrainingSettings

    with pytest.raises(InvalidValueError, match="did you mean seq_len"):
        TrainingSettings.from_mapping({"seq_lne": 4096})
