"""rigplan: plan, check and launch GPU rigs for running, fine-tuning and training LLMs.

>>> import rigplan
>>> rigplan.estimate("llama-3-70b", "2x rtx-4090", quant="4bit").fits
True
"""

from __future__ import annotations

from .capacity import Capacity, capacity
from .catalog import load_catalog
from .errors import (
    DataFileError,
    InvalidValueError,
    RigplanError,
    RigSyntaxError,
    UnknownEngineError,
    UnknownGPUError,
    UnknownModelError,
    UnknownQuantError,
    UnsupportedError,
)
from .estimate import Estimate, estimate
from .planner import Plan
from .planning import plan_rigs
from .power_report import PowerReport, power_report
from .rig import Rig, parse_rig
from .training import TrainingEstimate, TrainingPlan, estimate_training, plan_training
from .what_fits import WhatFits, what_fits

__version__ = "0.1.0"

__all__ = [
    "Capacity",
    "DataFileError",
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
    "UnknownQuantError",
    "UnsupportedError",
    "WhatFits",
    "__version__",
    "capacity",
    "estimate",
    "estimate_training",
    "load_catalog",
    "parse_rig",
    "plan_rigs",
    "plan_training",
    "power_report",
    "what_fits",
]
