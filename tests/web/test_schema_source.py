"""The web schema is generated from the request records: every field of the web's request
models that is also an option of rigplan.requests has its default, minimum, choices and help."""

from __future__ import annotations

import typing

import pytest
from pydantic.fields import FieldInfo

from rigplan import CAPACITY_OPTIONS, LAUNCH_OPTIONS, POWER_OPTIONS, TRAINING_OPTIONS, VRAM_OPTIONS
from rigplan.requests import INFERENCE_OPTIONS, PLAN_OPTIONS, Option
from rigplan.web import schemas

# (request model, option table, {web name: option name} where the web spells it differently)
SOURCES = [
    (schemas.EstimateRequest, INFERENCE_OPTIONS, {}),
    (schemas.CompareRequest, INFERENCE_OPTIONS, {}),
    (schemas.SweepRequest, INFERENCE_OPTIONS, {}),
    (schemas.PlanRequest, PLAN_OPTIONS, {"budget": "budget_usd"}),
    (schemas.VramRequest, VRAM_OPTIONS, {"quant": "quants", "context": "contexts", "rigs": "with_rigs"}),
    (schemas.PowerRequest, POWER_OPTIONS, {}),
    (schemas.LaunchRequest, LAUNCH_OPTIONS, {}),
    (schemas.CapacityRequest, CAPACITY_OPTIONS, {"min_tok_s": "min_tokens_per_s"}),
    (schemas.TrainRequest, TRAINING_OPTIONS, {}),
]
# Every option of these tables has its web field (a request model may add web-only fields).
WHOLE_TABLES = [
    (schemas.VramRequest, VRAM_OPTIONS),
    (schemas.PowerRequest, POWER_OPTIONS),
    (schemas.LaunchRequest, LAUNCH_OPTIONS),
    (schemas.CapacityRequest, CAPACITY_OPTIONS),
    (schemas.TrainRequest, TRAINING_OPTIONS),
]
# Fields whose web default differs from the CLI's on purpose, with the reason.
WEB_DEFAULTS = {
    ("PlanRequest", "quant"): "same 'any'",
    ("EstimateRequest", "quant"): "None = the engine's default in both",
}


def _minimum(info: FieldInfo) -> tuple[float | None, bool]:
    metadata = list(info.metadata)
    if typing.get_origin(info.annotation) is list:  # a list option: its items carry the bound
        metadata = list(getattr(typing.get_args(info.annotation)[0], "__metadata__", ()))
        metadata = [m for a in metadata for m in getattr(a, "metadata", [a])]
    for m in metadata:
        if getattr(m, "gt", None) is not None:
            return m.gt, True
        if getattr(m, "ge", None) is not None:
            return m.ge, False
    return None, False


def _choices(annotation: object) -> set[object]:
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    out: set[object] = set()
    for arg in typing.get_args(annotation) or (annotation,):
        if typing.get_origin(arg) is typing.Literal:
            out |= set(typing.get_args(arg))
        elif isinstance(arg, type) and issubclass(arg, int) and hasattr(arg, "__members__"):
            out |= {int(v) for v in arg.__members__.values()}
    return out


def _shared(model, table, renames):
    for name, info in model.model_fields.items():
        option: Option | None = table.get(renames.get(name, name))
        if option is not None:
            yield pytest.param(model, name, info, option, id=f"{model.__name__}.{name}")


CASES = [case for model, table, renames in SOURCES for case in _shared(model, table, renames)]


def test_the_shared_options_are_many():
    assert len(CASES) >= 50


@pytest.mark.parametrize("model,table", WHOLE_TABLES, ids=[m.__name__ for m, _ in WHOLE_TABLES])
def test_every_option_of_the_table_is_a_web_field(model, table):
    renames = next(r for m, _, r in SOURCES if m is model)
    assert set(table) <= {renames.get(name, name) for name in model.model_fields}


@pytest.mark.parametrize("model,name,info,option", CASES)
def test_field_matches_its_request_option(model, name, info, option):
    default = info.get_default(call_default_factory=True)
    expected = list(option.default or ()) if option.many else option.default
    assert default == expected or (model.__name__, name) in WEB_DEFAULTS
    assert info.description == option.help
    if option.kind in ("int", "number") and not option.choices:
        assert _minimum(info) == (option.minimum, option.exclusive)
    if option.choices:
        assert _choices(info.annotation) - {None} == set(option.choices)


@pytest.mark.parametrize(
    "model,name", [(schemas.PlanRequest, "budget"), (schemas.EstimateRequest, "prompt_tokens")], ids=str
)
def test_help_comes_from_the_record(model, name):
    option = (PLAN_OPTIONS if model is schemas.PlanRequest else INFERENCE_OPTIONS)[
        {"budget": "budget_usd"}.get(name, name)
    ]
    assert model.model_fields[name].description == option.help
