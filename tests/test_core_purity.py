"""The core computes from its arguments alone: with the request and context built at the edge,
``core.evaluate`` and ``planner.plan`` give their answer while HOME, the environment, the
home-directory helpers and (after one warm-up for the packaged tables) ``open`` all raise."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rigplan.core import evaluate
from rigplan.edge import inference_request, load_context
from rigplan.planner import plan
from rigplan.requests import PlanRequest


class Unreachable(AssertionError):
    pass


class _NoEnviron(Mapping[str, str]):
    """os.environ stand-in: any read is a failure."""

    def __getitem__(self, key: str) -> str:
        raise Unreachable(f"the core read the environment ({key})")

    def __iter__(self) -> Iterator[str]:
        raise Unreachable("the core listed the environment")

    def __len__(self) -> int:
        raise Unreachable("the core read the environment")

    def get(self, key: str, default: Any = None) -> Any:
        raise Unreachable(f"the core read the environment ({key})")


def _refuse(what: str):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Unreachable(f"the core called {what}")

    return refuse


@contextmanager
def machine_unreachable(monkeypatch: pytest.MonkeyPatch, *, files: bool) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setattr(os, "environ", _NoEnviron())
        m.setattr(os.path, "expanduser", _refuse("os.path.expanduser"))
        m.setattr(Path, "home", _refuse("Path.home"))
        m.setattr(Path, "expanduser", _refuse("Path.expanduser"))
        if files:
            m.setattr(builtins, "open", _refuse("open"))
            m.setattr(Path, "read_text", _refuse("Path.read_text"))
            m.setattr(Path, "read_bytes", _refuse("Path.read_bytes"))
        yield


def test_the_guard_catches_a_home_read(monkeypatch):
    with machine_unreachable(monkeypatch, files=True), pytest.raises(Unreachable):
        os.path.expanduser("~/.config")
    with machine_unreachable(monkeypatch, files=True), pytest.raises(Unreachable):
        os.getenv("HOME")
    with machine_unreachable(monkeypatch, files=True), pytest.raises(Unreachable):
        open(__file__)  # noqa: SIM115


@pytest.mark.parametrize("files", [False, True], ids=["cold", "warm-no-files"])
def test_evaluate_reads_nothing_from_the_machine(monkeypatch, files):
    ctx = load_context(use_user_calibration=True)
    request = inference_request("llama-3-8b", "2x rtx-3090", catalog=ctx.catalog, engine="vllm", batch=4)
    if files:
        evaluate(request, ctx)  # packaged tables are parsed once and cached
    with machine_unreachable(monkeypatch, files=files):
        e = evaluate(request, ctx)
    assert e.fits and e.speed.decode_tokens_per_s > 0


def test_the_planner_reads_nothing_from_the_machine(monkeypatch):
    ctx = load_context(use_user_calibration=True)
    request = PlanRequest(model=ctx.catalog.models["llama-3-8b"], engine="llama.cpp", top=2, max_gpus=2)
    first = plan(request, ctx)
    with machine_unreachable(monkeypatch, files=True):
        again = plan(request, ctx)
    assert again.recommendations and [r.rig for r in again.recommendations] == [r.rig for r in first.recommendations]


def test_evaluate_training_is_the_public_estimate_without_the_machine(monkeypatch):
    from rigplan.core import evaluate_training
    from rigplan.edge import training_request
    from rigplan.training import estimate_training

    settings = {"method": "lora", "seq_len": 4096, "zero_stage": 2, "tokens": 1e8}
    public = estimate_training("llama-3-8b", "2x rtx-4090", **settings)
    ctx = load_context(use_user_calibration=False)
    request = training_request("llama-3-8b", "2x rtx-4090", catalog=ctx.catalog, **settings)
    with machine_unreachable(monkeypatch, files=True):
        core = evaluate_training(request, ctx)
    assert core.to_dict() == public.to_dict()


def test_evaluate_training_names_an_unknown_setting():
    from rigplan.core import evaluate_training
    from rigplan.edge import training_request
    from rigplan.errors import InvalidValueError

    ctx = load_context(use_user_calibration=False)
    request = training_request("llama-3-8b", "rtx-4090", catalog=ctx.catalog, seq_lenght=4096)
    with pytest.raises(InvalidValueError, match=r"seq_lenght.*did you mean seq_len"):
        evaluate_training(request, ctx)
