"""Printing for the CLI: JSON, tables that fold to the terminal's width, one-line messages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .safety import quiet_exit_on_closed_pipe

# Width when output goes to a pipe or file and COLUMNS is unset: wide enough for every table.
PIPE_WIDTH = 200
# Narrowest width we lay out for; below it lines may still be longer (a GPU id does not break).
MIN_WIDTH = 40
# Indent of a folded row's fields under its heading.
FOLD_INDENT = 3
# Spaces between two columns (rich's default padding of one on each side, no box, no edge).
COLUMN_GAP = 2


def console() -> Console:
    """A console as wide as the terminal, or COLUMNS when set, or PIPE_WIDTH into a pipe."""
    if os.environ.get("COLUMNS", "").isdigit():
        width: int | None = max(int(os.environ["COLUMNS"]), MIN_WIDTH)
    else:
        width = None if sys.stdout.isatty() else PIPE_WIDTH
    return _Console(width=width, highlight=False, soft_wrap=False, markup=False)


class _Console(Console):
    """rich's console, leaving quietly (status 141) when the reader closes the pipe."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        quiet_exit_on_closed_pipe()


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


class FoldingTable:
    """A table that prints as columns when it fits the width, else one block per row.

    A folded row is its first cell as a heading, then ``column value`` pairs joined by
    `` · `` and wrapped under it, so nothing is cut off at 80 columns.
    """

    def __init__(self, table: Table, columns: list[str], rows: list[list[str]]) -> None:
        self.table = table
        self.columns = columns
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.needed_width() <= options.max_width:
            yield self.table
            return
        yield from self._folded()

    def needed_width(self) -> int:
        """The narrowest the columns print without cutting a cell: a column that does not wrap
        needs its longest cell, one that wraps its longest word (rich would otherwise shrink a
        no-wrap column and end its cells with "…")."""
        widths = []
        for i, column in enumerate(self.table.columns):
            cells = [self.columns[i], *(row[i] for row in self.rows if i < len(row))]
            if column.no_wrap:
                widths.append(max(cell_len(c) for c in cells))
            else:
                widths.append(max((cell_len(w) for c in cells for w in c.split()), default=0))
        return sum(widths) + COLUMN_GAP * (len(widths) - 1)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(MIN_WIDTH, options.max_width)

    def _folded(self) -> Iterator[Text | Padding]:
        if self.table.title:
            yield Text(str(self.table.title))
        # A rank column ("#") joins the next cell in the heading: "1. 2x rtx-3090".
        lead = 2 if self.columns[0] == "#" and len(self.columns) > 1 else 1
        for row in self.rows:
            yield Text(". ".join(cell for cell in row[:lead] if cell))
            fields = [f"{name}: {value}" for name, value in zip(self.columns[lead:], row[lead:], strict=False) if value]
            yield Padding(Text("; ".join(fields)), (0, 0, 0, FOLD_INDENT), expand=False)


def table(
    title: str | None,
    columns: list[str],
    rows: list[list[str]],
    *,
    right: set[int] | None = None,
    wrap: set[int] | None = None,
) -> FoldingTable:
    """A table of strings; columns in ``right`` are right-aligned (numbers); the last column and
    those in ``wrap`` may wrap onto more lines on a narrow terminal."""
    t = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for i, c in enumerate(columns):
        folds = i == len(columns) - 1 or (wrap is not None and i in wrap)
        t.add_column(c, justify="right" if right and i in right else "left", no_wrap=not folds)
    for r in rows:
        t.add_row(*r)
    return FoldingTable(t, columns, rows)
