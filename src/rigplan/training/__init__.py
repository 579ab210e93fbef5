"""Training and fine-tuning: memory per GPU, throughput, time and cost, and rig planning.

>>> from rigplan.training import estimate_training
>>> estimate_training("llama-3-8b", "rtx-4090", method="qlora").fits
True
"""

from __future__ import annotations

from .estimate import TrainingEstimate, estimate_training, training_fit_advice
from .planner import TrainingOption, TrainingPlan, plan_training, render_training_plan

__all__ = [
    "TrainingEstimate",
    "TrainingOption",
    "TrainingPlan",
    "estimate_training",
    "plan_training",
    "render_training_plan",
    "training_fit_advice",
]
