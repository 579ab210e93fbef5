"""rigplan: plan, check and launch GPU rigs for running, fine-tuning and training LLMs.

>>> import rigplan
>>> rigplan.estimate("llama-3-70b", "2x rtx-4090", quant="4bit").fits
True

The public API is ``__all__``: the CLI and the web page use nothing else (tests/test_layering.py).
Names whose modules pull optional parts (NVML, measuring, launch commands, calibration files)
load on first use, so ``import rigplan`` stays light.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from .catalog import load_catalog
from .errors import (
    DataFileError,
    DeviceError,
    InvalidValueError,
    RigplanError,
    RigSyntaxError,
    UnknownEngineError,
    UnknownGPUError,
    UnknownModelError,
    UnknownNameError,
    UnknownQuantError,
    UnsupportedError,
)
from .estimate import Estimate, estimate
from .planner import Plan, parse_price_overrides
from .planning import plan_rigs
from .power_report import PowerReport, power_report
from .rig import Rig, parse_rig, resolve_gpu, resolve_model
from .training import TrainingEstimate, TrainingPlan, estimate_training, plan_training, render_training_plan
from .units import GIB, format_gib, format_rate, format_usd

__version__ = "0.1.0"

#: Public names loaded on first use: name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "ENGINES": ("rigplan.engines", "ENGINES"),
    "SERVE_ENGINES": ("rigplan.integrations.launch", "SERVE_ENGINES"),
    "accuracy_report": ("rigplan.calibration.accuracy", "accuracy_report"),
    "calibrate": ("rigplan.calibration.user", "calibrate"),
    "calibration_store_path": ("rigplan.calibration.user", "store_path"),
    "detect_gpus": ("rigplan.integrations.nvml", "detect_gpus"),
    "format_duration": ("rigplan.training.planner", "format_duration"),
    "format_training_accuracy": ("rigplan.training.fit", "format_training_accuracy"),
    "gpu_dict": ("rigplan.catalog.query", "gpu_dict"),
    "launch_plan": ("rigplan.integrations.launch", "launch_plan"),
    "list_gpus": ("rigplan.catalog.query", "list_gpus"),
    "list_models": ("rigplan.catalog.query", "list_models"),
    "list_quants": ("rigplan.catalog.query", "list_quants"),
    "load_measured": ("rigplan.integrations.measure", "load_measured"),
    "measure": ("rigplan.integrations.measure", "measure"),
    "measured_path": ("rigplan.integrations.measure", "measured_path"),
    "model_dict": ("rigplan.catalog.query", "model_dict"),
    "plan_dict": ("rigplan.present", "plan_dict"),
    "reset_calibration": ("rigplan.calibration.user", "reset"),
    "save_measured": ("rigplan.integrations.measure", "save_measured"),
    "show_calibration": ("rigplan.calibration.user", "show"),
    "training_accuracy": ("rigplan.training.fit", "training_accuracy"),
    "training_launch_plan": ("rigplan.integrations.launch", "training_plan"),
    "vram_dict": ("rigplan.vram", "vram_dict"),
    "vram_table": ("rigplan.vram", "vram_table"),
}


def __getattr__(name: str) -> _Any:
    """Load a lazy public name (not cached: tests may patch the module it comes from)."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'rigplan' has no attribute {name!r}") from None
    return getattr(_importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ENGINES",
    "GIB",
    "SERVE_ENGINES",
    "DataFileError",
    "DeviceError",
    "Estimate",
    "InvalidValueError",
    "Plan",
    "PowerReport",
    "Rig",
    "RigSyntaxError",
    "RigplanError",
    "TrainingEstimate",
    "TrainingPlan",
    "UnknownEngineError",
    "UnknownGPUError",
    "UnknownModelError",
    "UnknownNameError",
    "UnknownQuantError",
    "UnsupportedError",
    "__version__",
    "accuracy_report",
    "calibrate",
    "calibration_store_path",
    "detect_gpus",
    "estimate",
    "estimate_training",
    "format_duration",
    "format_gib",
    "format_rate",
    "format_training_accuracy",
    "format_usd",
    "gpu_dict",
    "launch_plan",
    "list_gpus",
    "list_models",
    "list_quants",
    "load_catalog",
    "load_measured",
    "measure",
    "measured_path",
    "model_dict",
    "parse_price_overrides",
    "parse_rig",
    "plan_dict",
    "plan_rigs",
    "plan_training",
    "power_report",
    "render_training_plan",
    "reset_calibration",
    "resolve_gpu",
    "resolve_model",
    "save_measured",
    "show_calibration",
    "training_accuracy",
    "training_launch_plan",
    "vram_dict",
    "vram_table",
]
