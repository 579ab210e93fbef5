"""docs/cli.md is the CLI's own --help, kept equal by this test.

Regenerate after changing a command: RIGPLAN_UPDATE_DOCS=1 python -m pytest tests/cli/test_docs.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import check_generated
from rigplan.cli import app, main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HEADER = """# rigplan command reference

Generated from `rigplan --help` and `rigplan COMMAND --help` (a test keeps this file equal to
them). Every command but `serve` takes `--json`; errors print one line and exit with status 2.
"""


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit):
        main([*args, "--help"])
    return capsys.readouterr().out.rstrip()


def render(capsys: pytest.CaptureFixture[str]) -> str:
    parts = [HEADER, "```text", _help(capsys), "```"]
    for command in app.registered_commands:
        name = command.name or command.callback.__name__  # type: ignore[union-attr]
        parts += [f"\n## rigplan {name}\n", "```text", _help(capsys, name), "```"]
    return "\n".join(parts) + "\n"


def test_cli_doc_matches_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    check_generated(DOC, render(capsys), "see this file's docstring")
