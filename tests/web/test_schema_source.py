"""The web schema is generated from the request records: every field of the web's request
models that is also an option of rigplan.requests has its default, minimum, choices and help."""

from __future__ import annotations

import typing

import pytest
from pydantic.fields import FieldInfo

from rigplan.requests import INFERENCE_OPTIONS, PLAN_OPTIONS, Option
from rigplan.web import schemas

# (request model, option table, {web name: option name} where the web spells it differently)
SOURCES = [
    (schemas.EstimateRequest, INFERENCE_OPTIONS, {}),
    (schemas.CompareRequest, INFERENCE_OPTIONS, {}),
    (schemas.SweepRequest, INFERENCE_OPTIONS, {}),
    (schemas.PlanRequest, PLAN_OPTIONS, {"budget": "budget_usd"}),
]
# Fields whose web default differs from the CLI's on purpose, with the reason.
WEB_DEFAULTS = {
    ("PlanRequest", "quant"): "same 'any'",
    ("EstimateRequest", "quant"): "None = the engine's default in both",
}


def _minimum(info: FieldInfo) -> tuple[float | None, bool]:
    for m in info.metadata:
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
    assert len(CASES) >= 25


@pytest.mark.parametrize("model,name,info,option", CASES)
def test_field_matches_its_request_option(model, name, info, option):
    assert info.default == option.default or (model.__name__, name) in WEB_DEFAULTS
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
