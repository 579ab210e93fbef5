"""Shared test helpers: run the CLI in-process, and keep generated docs honest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rigplan.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``rigplan ARGS`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def check_generated(path: Path, fresh: str, how: str) -> None:
    """Fail unless ``path`` holds ``fresh``.  With RIGPLAN_UPDATE_DOCS set, a stale file is
    rewritten and the test still fails, loudly, so an update run never passes silently."""
    current = path.read_text(encoding="utf-8")
    if current == fresh:
        return
    if os.environ.get("RIGPLAN_UPDATE_DOCS"):
        path.write_text(fresh, encoding="utf-8")
        pytest.fail(
            f"{path.name} was stale and has been regenerated: review the diff, then rerun without RIGPLAN_UPDATE_DOCS"
        )
    pytest.fail(f"{path.name} is stale: regenerate it ({how})")
