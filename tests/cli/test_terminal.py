"""The CLI in a terminal as people use it (issue 16): tables fold to the width instead of cutting
cells, and a closed pipe (`rigplan gpus | head -1`) ends quietly."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from cli_runner import run
from rigplan.cli.output import FOLD_INDENT, table


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_a_plan_fits_the_width_and_cuts_no_cell(capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = run(capsys, "plan", "llama-3-70b")
    assert code == 0 and not err
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    assert not any("…" in line for line in lines)  # a shrunk column ends its cells with "…"
    assert "2x mi50-32gb" in out  # the top pick is there, folded or not


def test_a_closed_pipe_ends_quietly():
    command = [sys.executable, "-c", "from rigplan.cli import main; main()", "gpus"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as rigplan:
        head = subprocess.run(["head", "-1"], stdin=rigplan.stdout, capture_output=True, check=True)
        rigplan.stdout.close()
        err = rigplan.stderr.read()
        code = rigplan.wait(timeout=60)
    assert code in (0, 141, -13)  # 141 / -SIGPIPE: ended by the closed pipe
    assert err == b"" and head.stdout.strip()


WORD = st.text(st.sampled_from("abcdefgh0123456789.-"), min_size=1, max_size=12)
CELL = st.lists(WORD, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    columns=st.integers(min_value=2, max_value=7).flatmap(lambda n: st.lists(WORD, min_size=n, max_size=n)),
    data=st.data(),
    width=st.integers(min_value=40, max_value=200),
)
def test_a_table_prints_whole_at_any_width(columns, data, width):
    rows = data.draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=5))
    out = io.StringIO()
    Console(width=width, file=out, highlight=False, soft_wrap=False).print(table(None, columns, rows, right={0}))
    text = out.getvalue()
    assert "…" not in text
    longest_word = max(len(w) for row in [columns, *rows] for cell in row for w in cell.split())
    longest_field = max(
        len(f"{c}: {w}") for row in rows for c, cell in zip(columns, row, strict=True) for w in cell.split()
    )
    bound = max(width, FOLD_INDENT + longest_field, longest_word)
    assert all(len(line.rstrip()) <= bound for line in text.splitlines())
