"""`rigplan plan`, `estimate`, `compare`, `vram`, `power`, `launch`, `capacity` and `train` take their options from
the option tables of rigplan.requests: the same help and the same default as the Python API."""

from __future__ import annotations

import inspect
import typing

import pytest

from rigplan import (
    CAPACITY_OPTIONS,
    INFERENCE_OPTIONS,
    LAUNCH_OPTIONS,
    PLAN_OPTIONS,
    POWER_OPTIONS,
    TRAINING_OPTIONS,
    VRAM_OPTIONS,
    capacity,
    launch_plan,
    power_report,
    vram_table,
)
from rigplan.cli.capacity_cmd import capacity_cmd
from rigplan.cli.device_cmds import launch
from rigplan.cli.estimate_cmds import compare, estimate_cmd, vram
from rigplan.cli.plan_cmds import plan_cmd, power_cmd
from rigplan.cli.train_cmds import train_cmd

#: CLI parameter -> the request option it sets, where the names differ.
RENAMED = {"budget": "budget_usd", "min_tok_s": "min_tokens_per_s"}
#: Renames of one command only: `rigplan vram --quant` sets vram_table's quants.
RENAMED_IN = {
    "vram": {"quant": "quants", "context": "contexts"},
    "train": {"checkpointing": "activation_checkpointing"},
}
#: CLI parameters that differ from the table on purpose: `--batch` is text ("1" or "max").
OWN = {"batch"}
COMMANDS = {
    "plan": (plan_cmd, PLAN_OPTIONS),
    "estimate": (estimate_cmd, INFERENCE_OPTIONS),
    "compare": (compare, INFERENCE_OPTIONS),
    "vram": (vram, VRAM_OPTIONS),
    "power": (power_cmd, POWER_OPTIONS),
    "launch": (launch, LAUNCH_OPTIONS),
    "capacity": (capacity_cmd, CAPACITY_OPTIONS),
    "train": (train_cmd, TRAINING_OPTIONS),
}
#: The command's least number of options from its table (a table that loses options fails).
LEAST = {"plan": 15, "estimate": 15, "compare": 6, "vram": 3, "power": 7, "launch": 11, "capacity": 7, "train": 20}


def option_name(command: str, parameter: str) -> str:
    return RENAMED_IN.get(command, {}).get(parameter) or RENAMED.get(parameter, parameter)


def shared(command: str) -> list[str]:
    function, table = COMMANDS[command]
    return [p for p in inspect.signature(function).parameters if option_name(command, p) in table and p not in OWN]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_commands_take_most_request_options(command):
    assert len(shared(command)) >= LEAST[command]


@pytest.mark.parametrize(("command", "parameter"), [(c, p) for c in COMMANDS for p in shared(c)])
def test_cli_option_matches_the_table(command, parameter):
    function, table = COMMANDS[command]
    option = table[option_name(command, parameter)]
    typer_option = typing.get_type_hints(function, include_extras=True)[parameter].__metadata__[0]
    # a list option's CLI default is None: the command fills in the table's default
    default = None if option.many else option.default
    assert inspect.signature(function).parameters[parameter].default == default
    assert typer_option.help.startswith(option.help.rstrip("."))


# --- the tables against the Python API they describe ----------------------------------------
API = {
    "vram": (vram_table, VRAM_OPTIONS),
    "power": (power_report, POWER_OPTIONS),
    "launch": (launch_plan, LAUNCH_OPTIONS),
    "capacity": (capacity, CAPACITY_OPTIONS),
}
#: Options the CLI and web carry that the Python function has no keyword for.
NOT_KEYWORDS = {("launch", "task")}  # task picks launch_plan or training_launch_plan


@pytest.mark.parametrize(
    ("command", "name"), [(c, n) for c, (_, table) in API.items() for n in table if (c, n) not in NOT_KEYWORDS]
)
def test_table_names_a_keyword_of_the_function_with_its_default(command, name):
    function, table = API[command]
    parameter = inspect.signature(function).parameters[name]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    # capacity() asks for users, context and speed; the table holds what the CLI and web default to
    if parameter.default is not inspect.Parameter.empty:
        assert parameter.default == table[name].default
