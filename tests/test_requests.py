"""rigplan.requests: the option tables check values once, with one clear error each."""

from __future__ import annotations

import pytest

from rigplan.errors import InvalidValueError
from rigplan.requests import (
    CAPACITY_OPTIONS,
    INFERENCE_OPTIONS,
    LAUNCH_OPTIONS,
    PLAN_OPTIONS,
    POWER_OPTIONS,
    TRAINING_OPTIONS,
    VRAM_OPTIONS,
    check_options,
)

TABLES = {
    "inference": INFERENCE_OPTIONS,
    "training": TRAINING_OPTIONS,
    "plan": PLAN_OPTIONS,
    "vram": VRAM_OPTIONS,
    "power": POWER_OPTIONS,
    "launch": LAUNCH_OPTIONS,
    "capacity": CAPACITY_OPTIONS,
}

ACCEPTED = [
    ("vram", "quants", ("4bit", "q8_0")),
    ("vram", "contexts", [512, 4096]),
    ("vram", "with_rigs", False),
    ("power", "power_limit", "70%"),
    ("power", "kwh_price", 0.3),
    ("launch", "task", "qlora"),
    ("launch", "gpu_layers", "auto"),
    ("launch", "gpu_layers", 40),
    ("launch", "network", "roce-400g"),
    ("capacity", "min_tokens_per_s", 0),
    ("capacity", "kv_dtype", "fp8"),
]

REFUSED = [
    ("vram", "quants", "4bit", "quant: must be a list"),
    ("vram", "contexts", [4096, 0], "context: must be a whole number ≥ 1"),
    ("vram", "contexts", [4096.5], "context: must be a whole number"),
    ("power", "kwh_price", 0, "kwh_price: must be a number > 0"),
    ("launch", "task", "pretrain", "task: must be one of serve, full, lora, qlora"),
    ("launch", "users", 0, "users: must be a whole number ≥ 1"),
    ("launch", "network", "ib-xdr", "network: must be one of"),
    ("launch", "gpu_layers", "all", "gpu_layers: must be a whole number ≥ 0 or .auto., got .all."),
    ("inference", "batch", "x", "batch: must be a whole number ≥ 1 or .max., got .x."),
    ("capacity", "context", 1, "context: must be a whole number ≥ 2"),
    ("capacity", "kv_dtype", "q4_0", "kv_dtype: must be one of bf16, f16, fp8"),
    ("capacity", "min_tokens_per_s", float("nan"), "min_tokens_per_s: must be a number ≥ 0"),
]


@pytest.mark.parametrize(("table", "name", "value"), ACCEPTED, ids=lambda v: str(v))
def test_a_good_value_passes(table, name, value):
    check_options(TABLES[table], {name: value})


@pytest.mark.parametrize(("table", "name", "value", "message"), REFUSED, ids=lambda v: str(v))
def test_a_bad_value_is_refused_with_its_name(table, name, value, message):
    with pytest.raises(InvalidValueError, match=message):
        check_options(TABLES[table], {name: value})


@pytest.mark.parametrize(
    ("table", "name"), [(t, n) for t, table in TABLES.items() for n in table], ids=lambda v: str(v)
)
def test_every_default_passes_its_own_check(table, name):
    option = TABLES[table][name]
    assert option.help.endswith(".")
    option.check(option.default)
