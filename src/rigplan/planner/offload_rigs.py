"""GPU + host-RAM rigs: llama.cpp partial offload (MoE experts in RAM) for models whose 4-bit
weights outgrow two 24 GB cards, priced with the RAM they need."""

from __future__ import annotations

from collections.abc import Mapping

from ..catalog.query import best_price
from ..catalog.records import Catalog, Platform
from ..core import evaluate
from ..errors import RigplanError
from ..headroom import within_margin
from ..offload import OFFLOAD_GPU_COUNTS, OFFLOAD_MIN_WEIGHTS_GIB, host_ram, offload_gpus, offload_platforms
from ..platforms import fit_platform
from ..power import estimate_power
from ..quant import Quant, engine_supports, get_quant, resolve_quant, weights_bytes
from ..requests import InferenceRequest
from ..results import per_user_speed
from ..rig import Rig
from ..units import GIB
from .candidates import gpu_pool
from .costing import rig_cost
from .records import CostItem, Recommendation
from .sweep import Inputs, Sweep


def _offload_rig(
    rig: Rig, platform: Platform, q: Quant, inputs: Inputs, catalog: Catalog, prices: Mapping[str, float]
) -> Recommendation | None:
    """One GPU + host-RAM rig on ``platform`` with llama.cpp, priced with the RAM it needs."""
    fit = fit_platform(rig.gpus, platform)
    if not fit.fits:
        return None
    try:
        request = InferenceRequest(
            inputs.model, rig, quant=q.id, engine="llama.cpp", context=inputs.context, batch=inputs.users,
            prompt_tokens=inputs.prompt_tokens, output_tokens=inputs.output_tokens, gpu_layers="auto",
            host_ram_gb=platform.max_host_ram_gb, link=f"pcie{fit.pcie_generation}", lanes=fit.lanes_per_gpu,
            host_memory_bandwidth_gb_per_s=platform.host_memory_bandwidth_gb_per_s,
        )  # fmt: skip
        est = evaluate(request, inputs.core)  # a MoE model gets the experts-in-RAM layout there
    except RigplanError:
        return None
    ram = host_ram(platform, est.memory.host_bytes, inputs.host.ram_gb if inputs.host else None)
    if ram is None or not est.memory.host_bytes or not within_margin(est, inputs.margin):
        return None
    power = estimate_power(rig, est.memory, est.speed, platform=platform, batch=inputs.users)
    cost, complete, items = rig_cost(rig, 0, fit, power, catalog, prices, inputs.condition, inputs.host)
    ram_item = CostItem(ram.describe(), float(ram.usd), "ram", ram.source, ram.as_of)
    total = None if cost is None else cost + ram.usd
    served = est.memory.max_concurrent_sequences or inputs.users
    if total is None or (inputs.budget_usd is not None and total > inputs.budget_usd) or served < inputs.users:
        return None
    speed = per_user_speed(est)[0]  # the rule of `rigplan capacity`: prompts included
    if inputs.min_tokens_per_s is not None and (speed is None or speed < inputs.min_tokens_per_s):
        return None
    return Recommendation(
        rig=rig, owned=0, engine="llama.cpp", quant=q, cost_usd=total, cost_complete=complete,
        cost_items=(*items, ram_item), estimate=est, power=power, platform=fit, users_served=served,
    )  # fmt: skip


def sweep_offload(
    inputs: Inputs, quant: str, catalog: Catalog, prices: Mapping[str, float], sweep: Sweep
) -> list[Recommendation]:
    """GPU + host-RAM rigs (llama.cpp partial offload; MoE experts in RAM) for models whose
    4-bit weights outgrow two 24 GB cards: a few cheap GPU types x 1-2 cards x the cheapest and
    the fastest-RAM priced platforms (an owned PC: that one)."""
    qname = "q4_k_m" if quant.strip().lower() in ("any", "4bit") else quant
    try:
        q = resolve_quant(qname, "llama.cpp")
    except RigplanError:
        return []
    if (
        not engine_supports(q, "llama.cpp")
        or weights_bytes(inputs.model, get_quant("q4_k_m")) < OFFLOAD_MIN_WEIGHTS_GIB * GIB
    ):
        return []
    pool = [g for g in gpu_pool(catalog, inputs.gpu_class, Sweep(), inputs.include_discontinued) if not g.is_system]
    price_of = {g.id: p.usd_per_gpu for g in pool if (p := best_price(catalog, g.id, inputs.condition))}
    price_of.update({k: v for k, v in prices.items() if k in price_of or k in catalog.gpus})
    platforms = (
        list(inputs.host.platforms(catalog))
        if inputs.host
        else offload_platforms(
            [p for p in catalog.platforms.values() if inputs.platform_class in (None, p.platform_class)]
        )
    )
    out = []
    for gpu in offload_gpus(pool, price_of):
        for n in OFFLOAD_GPU_COUNTS:
            if inputs.max_gpus is not None and n > inputs.max_gpus:
                continue
            for platform in platforms:
                sweep.considered += 1
                sweep.estimated += 1
                rec = _offload_rig(Rig(gpus=(gpu,) * n), platform, q, inputs, catalog, prices)
                if rec is not None:
                    out.append(rec)
    return out
