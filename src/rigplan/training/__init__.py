"""Training and fine-tuning: memory per GPU, throughput, time and cost, and rig planning.

>>> from rigplan.training import estimate_training
>>> estimate_training("llama-3-8b", "rtx-4090", method="qlora").fits
True

The names below load on first use (PEP 562): importing a model-layer module of this package
(``rigplan.training.setup``, ``.memory``, ...) does not load the edge (``.estimate``, which
resolves names) or the planner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .estimate import TrainingEstimate, estimate_training, training_fit_advice
    from .planner import TrainingOption, TrainingPlan, plan_training, render_training_plan

#: Public names: name -> the module of this package that holds it.
_WHERE = {
    "TrainingEstimate": ".estimate",
    "estimate_training": ".estimate",
    "training_fit_advice": ".estimate",
    "TrainingOption": ".planner",
    "TrainingPlan": ".planner",
    "plan_training": ".planner",
    "render_training_plan": ".planner",
}

__all__ = [
    "TrainingEstimate",
    "TrainingOption",
    "TrainingPlan",
    "estimate_training",
    "plan_training",
    "render_training_plan",
    "training_fit_advice",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
