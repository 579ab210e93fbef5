"""Printing for the CLI: JSON, rich tables at a fixed width in tests, one-line messages."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Width when output goes to a pipe or file and COLUMNS is unset: wide enough for every table.
PIPE_WIDTH = 200


def console() -> Console:
    if os.environ.get("COLUMNS", "").isdigit():
        width: int | None = int(os.environ["COLUMNS"])
    else:
        width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(width=width, highlight=False, soft_wrap=False, markup=False)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def table(title: str | None, columns: list[str], rows: list[list[str]], *, right: set[int] | None = None) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if right and i in right else "left", no_wrap=i < len(columns) - 1)
    for r in rows:
        t.add_row(*r)
    return t
