"""CLI options built from the request records' option tables (``rigplan.PLAN_OPTIONS`` …): each
flag's type and help come from the one place that also validates the value, so the CLI, the
Python API and the web API cannot drift apart (sqlite-utils shares one decorator per option)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

#: An option table's kinds as the Python types typer parses.
_TYPES: dict[str, type] = {"name": str, "int": int, "number": float, "bool": bool, "int-or-name": str}


def request_option(
    table: Any, name: str, *flags: str, extra: str = "", python_type: Any = None, show_default: bool = True
) -> Any:
    """``Annotated[type, typer.Option(...)]`` for option ``name`` of ``table``.

    Args:
        flags: the CLI's flag names when they differ from ``--name`` (e.g. ``--class``).
        extra: words the CLI adds to the table's help (options only the CLI has).
        python_type: the parsed type when it differs from the table's kind.

    An option that takes a list (``many``) is a repeatable flag whose CLI default is None: the
    command then uses the table's default.
    """
    option = table[name]
    kind = python_type or _TYPES[option.kind]
    if option.many:
        kind = list[kind]
    if option.default is None or option.many:
        kind = kind | None
    help_text = option.help if not extra else option.help.rstrip(".") + extra
    return Annotated[kind, typer.Option(*flags, help=help_text, show_default=show_default)]
