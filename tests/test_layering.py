"""The pure core stays pure: importing it loads no UI or web library (style.md rule 1)."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "rigplan",
    "rigplan.estimate",
    "rigplan.memory",
    "rigplan.speed",
    "rigplan.arch",
    "rigplan.catalog",
    "rigplan.quant",
    "rigplan.placement",
]
UI = ["typer", "click", "rich", "fastapi", "uvicorn", "starlette", "torch", "pynvml", "huggingface_hub", "gguf"]


def test_core_imports_no_ui_library():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "import rigplan; rigplan.estimate('llama-3-8b', 'rtx-4090')\n"
        f"print(','.join(m for m in {UI!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
