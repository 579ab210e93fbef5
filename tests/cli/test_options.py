"""`rigplan plan` and `rigplan estimate` take their options from rigplan.PLAN_OPTIONS and
rigplan.INFERENCE_OPTIONS: the same help and the same default as the Python API."""

from __future__ import annotations

import inspect
import typing

import pytest

from rigplan import INFERENCE_OPTIONS, PLAN_OPTIONS
from rigplan.cli.estimate_cmds import estimate_cmd
from rigplan.cli.plan_cmds import plan_cmd

#: CLI parameter -> the request option it sets, where the names differ.
RENAMED = {"budget": "budget_usd"}
#: CLI parameters that differ from the table on purpose: `--batch` is text ("1" or "max").
OWN = {"batch"}
COMMANDS = {"plan": (plan_cmd, PLAN_OPTIONS), "estimate": (estimate_cmd, INFERENCE_OPTIONS)}


def shared(command: str) -> list[str]:
    function, table = COMMANDS[command]
    return [p for p in inspect.signature(function).parameters if RENAMED.get(p, p) in table and p not in OWN]


def test_the_commands_take_most_request_options():
    assert len(shared("plan")) >= 15
    assert len(shared("estimate")) >= 15


@pytest.mark.parametrize(("command", "parameter"), [(c, p) for c in COMMANDS for p in shared(c)])
def test_cli_option_matches_the_table(command, parameter):
    function, table = COMMANDS[command]
    option = table[RENAMED.get(parameter, parameter)]
    typer_option = typing.get_type_hints(function, include_extras=True)[parameter].__metadata__[0]
    assert inspect.signature(function).parameters[parameter].default == option.default
    assert typer_option.help.startswith(option.help.rstrip("."))
