"""The optional libraries stay optional: the CLI and the integration modules import gguf,
huggingface_hub, nvidia-ml-py and torch only inside the functions that need them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["gguf", "huggingface_hub", "pynvml", "torch", "numpy"]
MODULES = [
    "rigplan.cli",
    "rigplan.integrations.sources",
    "rigplan.integrations.launch",
    "rigplan.integrations.nvml",
    "rigplan.integrations.measure",
    "rigplan.integrations.hf",
    "rigplan.integrations.gguf_file",
]


def test_integrations_import_no_optional_library():
    code = f"import sys\nfor m in {MODULES!r}: __import__(m)\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
