"""rigplan: plan, check and launch GPU rigs for running, fine-tuning and training LLMs.

>>> import rigplan
>>> rigplan.estimate("llama-3-70b", "2x rtx-4090", quant="4bit").fits
True

The public API is ``__all__``: the CLI and the web page use nothing else (tests/test_layering.py
checks every import; tests/test_exported_members.py pins the list).  Names whose modules pull
optional or heavy parts (NVML, measuring, launch commands, accuracy reports, calibration files)
load on first use, so ``import rigplan`` stays light.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from .capacity import Capacity, capacity
from .catalog import load_catalog
from .edge import load_user_prices, resolve_model_input, user_config_path
from .engines import ENGINES
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
from .estimate import Estimate, estimate, fit_advice
from .headroom import DEFAULT_MARGIN, fullest_fraction, margin_applies, within_margin
from .planner import Plan, parse_price_overrides
from .planning import plan_rigs
from .power_report import PowerReport, power_report
from .requests import (
    CAPACITY_OPTIONS,
    INFERENCE_OPTIONS,
    LAUNCH_OPTIONS,
    PLAN_OPTIONS,
    POWER_OPTIONS,
    TRAINING_OPTIONS,
    VRAM_OPTIONS,
)
from .rig import Rig, parse_rig, resolve_gpu, resolve_model
from .units import GIB, format_gib, format_rate, format_usd
from .what_fits import WhatFits, what_fits

__version__ = "0.1.0"

#: Public names loaded on first use: name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    # training: ~20 modules that `rigplan plan` (inference) and `estimate` never need
    "TrainingEstimate": ("rigplan.training", "TrainingEstimate"),
    "TrainingPlan": ("rigplan.training", "TrainingPlan"),
    "estimate_training": ("rigplan.training", "estimate_training"),
    "plan_training": ("rigplan.training", "plan_training"),
    "render_training_plan": ("rigplan.training", "render_training_plan"),
    "training_fit_advice": ("rigplan.training", "training_fit_advice"),
    "GPUView": ("rigplan.catalog.query", "GPUView"),
    "Model": ("rigplan.catalog.records", "Model"),
    "Option": ("rigplan.requests", "Option"),
    "SERVE_ENGINES": ("rigplan.integrations.launch", "SERVE_ENGINES"),
    "accuracy_report": ("rigplan.calibration.accuracy", "accuracy_report"),
    "breakdown_dict": ("rigplan.calibration.breakdown", "breakdown_dict"),
    "calibrate": ("rigplan.calibration.user", "calibrate"),
    "calibration_store_path": ("rigplan.calibration.user", "store_path"),
    "default_contexts": ("rigplan.vram", "default_contexts"),
    "detect_gpus": ("rigplan.integrations.nvml", "detect_gpus"),
    "format_duration": ("rigplan.training.planner", "format_duration"),
    "format_framework_accuracy": ("rigplan.training.validate", "format_framework_accuracy"),
    "format_serving_accuracy": ("rigplan.calibration.serving_accuracy", "format_serving_accuracy"),
    "format_training_accuracy": ("rigplan.training.fit", "format_training_accuracy"),
    "framework_accuracy": ("rigplan.training.validate", "framework_accuracy"),
    "gpu_dict": ("rigplan.catalog.query", "gpu_dict"),
    "held_out_rows": ("rigplan.calibration.breakdown", "held_out_rows"),
    "launch_plan": ("rigplan.integrations.launch", "launch_plan"),
    "list_gpus": ("rigplan.catalog.query", "list_gpus"),
    "list_models": ("rigplan.catalog.query", "list_models"),
    "list_quants": ("rigplan.catalog.query", "list_quants"),
    "load_measured": ("rigplan.integrations.measure", "load_measured"),
    "loads_json": ("rigplan.textfiles", "loads_json"),
    "load_power_curves": ("rigplan.calibration.power_curve", "load_power_curves"),
    "load_user_catalog": ("rigplan.edge", "load_user_catalog"),
    "measure": ("rigplan.integrations.measure", "measure"),
    "measured_path": ("rigplan.integrations.measure", "measured_path"),
    "model_dict": ("rigplan.catalog.query", "model_dict"),
    "quant_bits_text": ("rigplan.catalog.query", "quant_bits_text"),
    "reset_calibration": ("rigplan.calibration.user", "reset"),
    "save_measured": ("rigplan.integrations.measure", "save_measured"),
    "serving_accuracy": ("rigplan.calibration.serving_accuracy", "serving_accuracy"),
    "show_calibration": ("rigplan.calibration.user", "show"),
    "source_from_config": ("rigplan.integrations.sources", "source_from_config"),
    "source_from_gguf_bytes": ("rigplan.integrations.gguf_upload", "source_from_gguf_bytes"),
    "GGUF_HEADER_LIMIT_BYTES": ("rigplan.integrations.gguf_upload", "HEADER_LIMIT_BYTES"),
    "text_breakdown": ("rigplan.calibration.breakdown", "text_breakdown"),
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
    "CAPACITY_OPTIONS",
    "DEFAULT_MARGIN",
    "ENGINES",
    "GGUF_HEADER_LIMIT_BYTES",
    "GIB",
    "INFERENCE_OPTIONS",
    "LAUNCH_OPTIONS",
    "PLAN_OPTIONS",
    "POWER_OPTIONS",
    "SERVE_ENGINES",
    "TRAINING_OPTIONS",
    "VRAM_OPTIONS",
    "Capacity",
    "DataFileError",
    "DeviceError",
    "Estimate",
    "GPUView",
    "InvalidValueError",
    "Model",
    "Option",
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
    "WhatFits",
    "__version__",
    "accuracy_report",
    "breakdown_dict",
    "calibrate",
    "calibration_store_path",
    "capacity",
    "default_contexts",
    "detect_gpus",
    "estimate",
    "estimate_training",
    "fit_advice",
    "format_duration",
    "format_framework_accuracy",
    "format_gib",
    "format_rate",
    "format_serving_accuracy",
    "format_training_accuracy",
    "format_usd",
    "framework_accuracy",
    "fullest_fraction",
    "gpu_dict",
    "held_out_rows",
    "launch_plan",
    "list_gpus",
    "list_models",
    "list_quants",
    "load_catalog",
    "load_measured",
    "load_power_curves",
    "load_user_catalog",
    "load_user_prices",
    "loads_json",
    "margin_applies",
    "measure",
    "measured_path",
    "model_dict",
    "parse_price_overrides",
    "parse_rig",
    "plan_rigs",
    "plan_training",
    "power_report",
    "quant_bits_text",
    "render_training_plan",
    "reset_calibration",
    "resolve_gpu",
    "resolve_model",
    "resolve_model_input",
    "save_measured",
    "serving_accuracy",
    "show_calibration",
    "source_from_config",
    "source_from_gguf_bytes",
    "text_breakdown",
    "training_accuracy",
    "training_fit_advice",
    "training_launch_plan",
    "user_config_path",
    "vram_dict",
    "vram_table",
    "what_fits",
    "within_margin",
]
