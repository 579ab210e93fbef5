"""Load the shipped training speed profile (``profiles/training.toml``, written by ``fit.py``)."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from .speed import TrainingProfile


@functools.cache
def profile_data() -> dict[str, Any]:
    """The profile file as TOML data (fitted parameters, accuracy figures, the rows)."""
    text = resources.files("rigplan.training").joinpath("profiles", "training.toml").read_text("utf-8")
    return tomllib.loads(text)


@functools.cache
def load_profile() -> TrainingProfile:
    """The shipped :class:`TrainingProfile`, with per-architecture factors (and the
    architectures assumed to behave like a fitted one)."""
    data = profile_data()
    p = data["profile"]
    factors = []
    for arch, f in data.get("architecture", {}).items():
        factors.append((arch, f["matmul"], f["attention"]))
        factors += [(other, f["matmul"], f["attention"]) for other in f.get("assumed_like", {})]
    return TrainingProfile(
        name=p["name"],
        matmul_efficiency=p["matmul_efficiency"],
        exposed_comm_fraction=p["exposed_comm_fraction"],
        attention_efficiency=p["attention_efficiency"],
        elementwise_traffic=p["elementwise_traffic"],
        matmul_half_tokens=p["matmul_half_tokens"],
        architecture_factors=tuple(factors),
        mape=p["loo_mape"],
        rows=p["rows"],
    )
