"""Planner: enumerate rigs, keep those that fit and meet every constraint, rank.

``rigplan.plan_rigs`` is the buyer's guide, computed: GPU type × count (1–8 per box; nodes of 8
for datacentre parts) × quant × engine, plus rigs that add GPUs to ones already owned, and GPU +
host-RAM rigs for models too large for two 24 GB cards.  It is a thin edge
(:mod:`rigplan.planning`) over :func:`plan`, which is pure: it receives the resolved model,
prices and owned GPUs in a :class:`~rigplan.requests.PlanRequest` and the catalogue, profiles
and user calibration in a :class:`~rigplan.core.Context`, and calls the core
(:func:`rigplan.core.evaluate`), never the edge.

One module per step, each readable in one sitting:

- :mod:`.sweep`: the plan's inputs and the sweep's state (what each constraint excluded, misses);
- :mod:`.ladders`: engines, each engine's quant ladder, a memory lower bound per GPU set;
- :mod:`.candidates`: which rigs to try (GPU types × counts, owned GPUs, nodes);
- :mod:`.costing`: what a rig costs (GPU prices by sale unit, platform, PSU);
- :mod:`.evaluate`: one rig: platform, cost and power checks, then the core estimate;
- :mod:`.offload_rigs`: GPU + host-RAM rigs (llama.cpp partial offload);
- :mod:`.rank`: order by the objective, best per rig, the next step up, the nearest miss;
- :mod:`.plan`: the steps in order;
- :mod:`.records`: what comes out (:class:`Plan`, :class:`Recommendation`, :class:`CostItem`).

The words (why each pick wins, when to avoid it) come from :mod:`rigplan.present`, which the CLI
and the web page share.

The sweep stays fast by pruning before estimating: a lower bound of the memory each GPU must
hold (weights less the token embeddings, plus the KV cache) skips counts that cannot fit, and
constraints known before an estimate (price, watts, circuit, platform, NVLink) are checked first.
"""

from __future__ import annotations

from ..requests import OBJECTIVES
from .costing import check_prices, parse_price_overrides, psu_cost
from .ladders import DEFAULT_ENGINES, MAX_GPUS_PER_BOX, MAX_NODES, QUANT_LADDERS
from .plan import DEFAULT_CONTEXT, DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, DEFAULT_TOP, MAX_MARGIN, plan
from .records import CostItem, NearestMiss, Plan, Recommendation
from .sweep import CONSTRAINTS

__all__ = [
    "CONSTRAINTS",
    "DEFAULT_CONTEXT",
    "DEFAULT_ENGINES",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_TOP",
    "MAX_GPUS_PER_BOX",
    "MAX_MARGIN",
    "MAX_NODES",
    "OBJECTIVES",
    "QUANT_LADDERS",
    "CostItem",
    "NearestMiss",
    "Plan",
    "Recommendation",
    "check_prices",
    "parse_price_overrides",
    "plan",
    "psu_cost",
]
