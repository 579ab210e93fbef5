"""The training core stays pure: importing it loads no UI library (style rule 1)."""

from __future__ import annotations

import subprocess
import sys


def test_training_core_imports_no_ui_libraries():
    code = (
        "import sys, rigplan.training, rigplan.training.fit;"
        "bad = [m for m in ('typer', 'rich', 'click', 'fastapi', 'numpy') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
