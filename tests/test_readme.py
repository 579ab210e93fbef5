"""The README's example outputs are the commands' real output, kept equal by this test.

A block is written as ``<!-- output: rigplan ARGS -->`` followed by a ```text fence.
Regenerate after a change: RIGPLAN_UPDATE_DOCS=1 python -m pytest tests/test_readme.py (the run that
rewrites the file fails, so an update never passes silently; rerun without the variable).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli_runner import check_generated
from rigplan.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- output: (rigplan [^>]*?) -->\n```text\n)(.*?)(```)", re.DOTALL)
WIDTH = "150"


def _output(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(shlex.split(command)[1:])
        raise SystemExit(0)
    assert exc.value.code in (0, None), f"{command} exited {exc.value.code}"
    return "\n".join(line.rstrip() for line in capsys.readouterr().out.rstrip().splitlines()) + "\n"


def test_readme_outputs_are_real(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", WIDTH)
    text = README.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 4, "the README should show real output of its main commands"
    fresh = BLOCK.sub(lambda m: m.group(1) + _output(capsys, m.group(2)) + m.group(4), text)
    check_generated(README, fresh, "see this file's docstring")
