"""Fixtures of the integration tests: a fake NVML installed as ``pynvml``."""

from __future__ import annotations

import copy
import sys
import types
from typing import Any

import pytest
from nvml_fake import NVML_CAPTURE, fake_nvml_module


@pytest.fixture(autouse=True)
def fresh_sources():
    """Each test reads its model files and Hub caches afresh."""
    from rigplan.integrations.sources import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def fake_nvml(monkeypatch):
    """Install a fake ``pynvml`` built from a capture; returns the installer."""

    def install(data: dict[str, Any] | None = None) -> types.ModuleType:
        module = fake_nvml_module(data or copy.deepcopy(NVML_CAPTURE))
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install
