"""The public API is small and pinned (httpx's test_exported_members.py, style.md rule 7).

Everything the CLI and the web page use is in ``rigplan.__all__`` (tests/test_layering.py
checks they import nothing else); adding a name is a decision, so it changes this list.
"""

from __future__ import annotations
import __future__

import types

import rigplan

PINNED = [
    "CAPACITY_OPTIONS",
    "Capacity",
    "DEFAULT_MARGIN",
    "DataFileError",
    "DeviceError",
    "ENGINES",
    "Estimate",
    "GGUF_HEADER_LIMIT_BYTES",
    "GIB",
    "GPUView",
    "INFERENCE_OPTIONS",
    "InvalidValueError",
    "LAUNCH_OPTIONS",
    "Model",
    "Option",
    "PLAN_OPTIONS",
    "POWER_OPTIONS",
    "Plan",
    "PowerReport",
    "Rig",
    "RigSyntaxError",
    "RigplanError",
    "SERVE_ENGINES",
    "TRAINING_OPTIONS",
    "TrainingEstimate",
    "TrainingPlan",
    "UnknownEngineError",
    "UnknownGPUError",
    "UnknownModelError",
    "UnknownNameError",
    "UnknownQuantError",
    "UnsupportedError",
    "VRAM_OPTIONS",
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


def test_all_is_pinned():
    assert sorted(rigplan.__all__) == PINNED


def test_all_imports_are_exported():
    """Every public name of the package is in ``__all__`` (submodules aside), and every name in
    ``__all__`` resolves (the lazy ones included)."""
    included_private_members = ["__version__"]
    members = [
        name
        for name in dir(rigplan)
        if (not name.startswith("_") or name in included_private_members)
        and not isinstance(getattr(rigplan, name), types.ModuleType | __future__._Feature)
    ]
    assert sorted(rigplan.__all__) == sorted(members)
    for name in rigplan.__all__:
        assert getattr(rigplan, name) is not None
