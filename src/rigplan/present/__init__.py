"""Words for results: the planner's picks explained (why, avoid if, next step up), shared by the
CLI and the web page through :func:`rigplan.plan_rigs`.  The planner itself returns numbers and
records only; this layer sits above it and below the edges."""

from __future__ import annotations

from .plan_text import avoid_if, explain_plan, next_step, why

__all__ = ["avoid_if", "explain_plan", "next_step", "why"]
