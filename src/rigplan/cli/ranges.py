"""Bounds on every number option of the CLI, by option name, checked before a command runs.

``rigplan estimate --batch 100000000`` or ``rigplan vram --context 1e8`` would otherwise print
absurd figures; a value outside its range is a usage error (exit 2) that says the range.  The
bounds are the web API's (``rigplan.web.schemas``): generous for any real rig or workload.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

MAX_TOKENS = 2**24  # 16 M tokens of context, prompt or output (the web API's bound)


@dataclass(frozen=True)
class Bound:
    """An inclusive range; ``above_zero`` makes the low end exclusive (a budget of 0 is no budget)."""

    low: float
    high: float
    above_zero: bool = False

    def describe(self) -> str:
        low = "above 0" if self.above_zero else f"at least {plain(self.low)}"
        return f"must be {low} and at most {plain(self.high)}"

    def admits(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.above_zero and value <= 0:
            return False
        return self.low <= value <= self.high


def plain(x: float) -> str:
    """A number as people write it: 16,777,216 rather than 1.67772e+07."""
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:g}"


OPTION_BOUNDS: dict[str, Bound] = {
    "context": Bound(1, MAX_TOKENS),
    "prompt_tokens": Bound(0, MAX_TOKENS),
    "output_tokens": Bound(0, MAX_TOKENS),
    "seq_len": Bound(1, MAX_TOKENS),
    "batch": Bound(1, 65_536),
    "global_batch": Bound(1, 2**20),
    "micro_batch": Bound(1, 65_536),
    "users": Bound(1, 4096),
    "top": Bound(1, 1000),
    "max_gpus": Bound(1, 16_384),
    "tensor_parallel": Bound(1, 16_384),
    "pipeline_parallel": Bound(1, 16_384),
    "lora_rank": Bound(1, 4096),
    "budget": Bound(0, 1e9, above_zero=True),
    "max_watts": Bound(0, 1e7, above_zero=True),
    "kwh_price": Bound(0, 100, above_zero=True),
    "min_tokens_per_s": Bound(0, 1e6, above_zero=True),
    "min_memory": Bound(0, 100_000),
    "host_ram": Bound(0, 1e6),
    "host_ram_bandwidth": Bound(0, 1e5, above_zero=True),
    "port": Bound(1, 65_535),
}


def _check(bound: Bound, then: Callable[..., Any] | None, ctx: Any, param: Any, value: Any) -> Any:
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and not bound.admits(float(v)):
            raise typer.BadParameter(f"{plain(v)}: {bound.describe()}", ctx=ctx, param=param)
    return then(ctx, param, value) if then is not None else value


def add_bounds(command: Any) -> Any:
    """Give each number option of ``command`` its bound from :data:`OPTION_BOUNDS` (once)."""
    if getattr(command, "_rigplan_bounded", False):
        return command
    for param in getattr(command, "params", []):
        bound = OPTION_BOUNDS.get(param.name or "")
        if bound is not None:
            param.callback = functools.partial(_check, bound, param.callback)
    command._rigplan_bounded = True
    return command


class BoundedGroup(TyperGroup):
    """The ``rigplan`` group: every sub-command it hands out has its number options bounded."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        return add_bounds(command) if command is not None else None
