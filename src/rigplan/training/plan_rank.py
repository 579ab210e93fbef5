"""Ranking a training plan's options: per-GPU Pareto, the cost/time front, and why each is listed."""

from __future__ import annotations

import dataclasses

from ..units import format_gib
from .plan_types import TrainingOption

# A rig whose step is more than this share exposed communication gets a warning line.
COMM_BOUND_SHARE = 0.3
COMMUNICATION_KEYS = (
    "tensor_parallel",
    "pipeline_send",
    "pipeline_bubble",
    "context_parallel",
    "expert_all_to_all",
    "data_parallel_exposed",
    "offload_copies",
)


def rank_options(options: list[TrainingOption], objective: str, limit: int) -> tuple[TrainingOption, ...]:
    """The best ``limit`` options by ``objective`` (cheapest: buy cost; rent: on-demand rent for
    the run; fastest: time), each flagged and explained."""
    options = _mark(_pareto_per_gpu(options))
    if objective == "cheapest":
        options.sort(key=lambda o: (o.buy_usd is None, o.buy_usd or 0.0, o.time_to_train_s))
    elif objective == "rent":
        options.sort(key=lambda o: (o.rent_usd is None, o.rent_usd or 0.0, o.time_to_train_s))
    else:
        options.sort(key=lambda o: (o.time_to_train_s, o.buy_usd is None, o.buy_usd or 0.0))
    return tuple(_explain(o, i, objective) for i, o in enumerate(options[:limit]))


def _pareto_per_gpu(options: list[TrainingOption]) -> list[TrainingOption]:
    """Per GPU type, drop rigs that are both slower and no cheaper than another count of it."""
    kept = []
    for o in options:
        same = [p for p in options if p.rig.gpus[0].id == o.rig.gpus[0].id and p is not o]
        dominated = any(p.rig.gpu_count < o.rig.gpu_count and p.time_to_train_s <= o.time_to_train_s for p in same)
        if not dominated:
            kept.append(o)
    return kept


def _mark(options: list[TrainingOption]) -> list[TrainingOption]:
    """Flag options no other priced option beats on both cost and time."""

    priced = [o for o in options if o.buy_usd is not None]
    out = []
    for o in options:
        front = o.buy_usd is not None and not any(
            p is not o
            and p.buy_usd is not None
            and o.buy_usd is not None
            and p.buy_usd <= o.buy_usd
            and p.time_to_train_s <= o.time_to_train_s
            and (p.buy_usd < o.buy_usd or p.time_to_train_s < o.time_to_train_s)
            for p in priced
        )
        out.append(dataclasses.replace(o, pareto=front))
    return out


def _explain(o: TrainingOption, rank: int, objective: str) -> TrainingOption:

    why = []
    if rank == 0:
        why.append(
            "cheapest rig that fits"
            if objective == "cheapest" and o.buy_usd is not None
            else "cheapest to rent for this run"
            if objective == "rent" and o.rent_usd is not None
            else "fastest rig"
            if objective == "fastest"
            else "first of the rigs without a price"
        )
    if o.pareto and rank > 0:
        why.append("no cheaper rig trains faster")
    if o.buy_usd is None:
        why.append(f"price unknown for {o.rig.gpus[0].id}")
    elif o.cost.unpriced:
        kinds = ("baseboard", "platform", "network")
        what = next((k for k in kinds if any(k in u for u in o.cost.unpriced)), "part")
        why.append(f"+ unpriced {what}")
    comm = sum(o.speed.breakdown_s.get(k, 0.0) for k in COMMUNICATION_KEYS)
    if comm > COMM_BOUND_SHARE * o.speed.step_time_s:
        why.append(f"{comm / o.speed.step_time_s:.0%} of each step is communication ({o.interconnect.description})")
    if o.setup.offload:
        why.append(f"CPU offload: needs {format_gib(o.memory.host_bytes, 0)} of host RAM per node")
    if o.memory.peak.paged_to_host_bytes:
        why.append("paged optimizer spills to host RAM")
    return dataclasses.replace(o, why=tuple(why))
