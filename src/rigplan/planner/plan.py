"""The planner's steps in order: check the request, enumerate and evaluate rigs, add offload
rigs, rank, keep the best per rig, and report what was excluded (pure: no prose, no clock)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..arch import check_supported
from ..core import Context
from ..engines import get_engine
from ..errors import InvalidValueError
from ..quant import resolve_quant
from ..requests import SERVING_OUTPUT_TOKENS, SERVING_PROMPT_TOKENS, PlanRequest, check_request_tokens
from .candidates import enumerate_rigs
from .ladders import MAX_GPUS_PER_BOX, engines_for
from .offload_rigs import sweep_offload
from .rank import best_per_rig, nearest_miss, rank_key, standouts, with_standouts
from .records import Plan, Recommendation
from .sweep import CONSTRAINTS, Inputs, Sweep

#: A margin above this leaves too little of a GPU to plan with (0.5 = half kept free).
MAX_MARGIN = 0.5
#: Context planned for when the user gives none: 4,096 tokens (Llama 2's whole window; a
#: conversation's worth on newer models), or one request when that is longer, capped at the
#: model's maximum.
DEFAULT_CONTEXT = 4096
#: The request priced per user: the workload `rigplan capacity` prices too (requests.py).
DEFAULT_PROMPT_TOKENS = SERVING_PROMPT_TOKENS
DEFAULT_OUTPUT_TOKENS = SERVING_OUTPUT_TOKENS
DEFAULT_TOP = 5


def _plan_context(request: PlanRequest) -> int:
    """Tokens of context per user: the request's, or the default (at least one request's
    tokens) capped at the model's maximum.

    Raises:
        InvalidValueError: a context beyond the model's maximum or shorter than one request.
    """
    mdl = request.model
    one_request = request.prompt_tokens + request.output_tokens
    ctx = request.context
    if ctx is None:
        ctx = min(max(DEFAULT_CONTEXT, one_request), mdl.max_context)
    if ctx > mdl.max_context:
        raise InvalidValueError("context", f"{ctx} exceeds {mdl.id}'s maximum of {mdl.max_context} tokens")
    check_request_tokens(ctx, request.prompt_tokens, request.output_tokens)
    return ctx


def _check_plan(request: PlanRequest) -> None:
    """Checks that need the catalogue's code tables (the request checked its own values)."""
    check_supported(request.model)
    if request.engine is not None:
        get_engine(request.engine)
    quant = request.quant
    if not isinstance(quant, str) or not quant.strip():
        raise InvalidValueError("quant", f"must be 'any', 4bit/8bit/16bit or a quant id, got {quant!r}")
    if quant.strip().lower() != "any":
        resolve_quant(quant, "llama.cpp")  # an unknown quant id is an error, not an empty plan
    if not request.margin < MAX_MARGIN:
        raise InvalidValueError("margin", f"must be a share of memory below {MAX_MARGIN:g}, got {request.margin!r}")
    if len(request.have) > MAX_GPUS_PER_BOX:
        raise InvalidValueError("have", f"at most {MAX_GPUS_PER_BOX} owned GPUs in one box, got {len(request.have)}")


def _plan_inputs(request: PlanRequest, context: Context) -> Inputs:
    ctx = _plan_context(request)
    return Inputs(
        model=request.model,
        context=ctx,
        users=request.users,
        prompt_tokens=request.prompt_tokens,
        output_tokens=request.output_tokens,
        min_tokens_per_s=request.min_tokens_per_s,
        budget_usd=request.budget_usd,
        max_watts=request.max_watts,
        circuit=request.circuit,
        max_gpus=request.max_gpus,
        gpu_class=request.gpu_class,
        platform_class=request.platform,
        nvlink=request.nvlink,
        objective=request.objective,
        kwh_price=request.kwh_price,
        core=context,
        condition=request.condition,
        margin=request.margin,
        host=request.host,
        include_discontinued=request.include_discontinued,
    )


def _plan_notes(
    objective: str, recs: Sequence[Recommendation], chosen: Sequence[Recommendation], owns_pc: bool
) -> list[str]:
    notes: list[str] = []
    if objective != "cheapest" and recs and all(r.speed_tokens_per_s is None for r in recs):
        notes.append(f"No speed estimates are available, so '{objective}' is ranked by cost instead.")
    if chosen and not notes and all(r.speed_tokens_per_s is None for r in chosen):
        notes.append("These estimates carry no speed (the speed model gave none).")
    if any(r.cost_usd is None for r in chosen):
        notes.append(
            "Rigs with a GPU that has no sourced price are listed after priced ones; give a price with --price GPU=USD."
        )
    if any(not r.cost_complete for r in chosen):
        notes.append("Some platforms have no sourced price: their cost covers GPUs and PSU only.")
    if not owns_pc and chosen and (share := _platform_share(chosen[0])) is not None:
        notes.append(
            f"The platform is {share:.0%} of the top pick's cost: if you already own a PC that takes the GPUs, "
            "add desktop to --have and only what you add is priced."
        )
    return notes


#: The share of a pick's cost above which the platform, not the GPUs, is most of what is paid.
PLATFORM_SHARE_NOTE = 0.5


def _platform_share(r: Recommendation) -> float | None:
    """The platform's share of ``r``'s cost, where it is most of it (else None)."""
    platform = sum(i.usd or 0.0 for i in r.cost_items if i.kind == "platform")
    if not r.cost_usd or platform <= PLATFORM_SHARE_NOTE * r.cost_usd:
        return None
    return platform / r.cost_usd


def _constraints(request: PlanRequest, inputs: Inputs, engines: Sequence[str]) -> dict[str, Any]:
    return {
        "quant": request.quant,
        "context": inputs.context,
        "users": request.users,
        "min_tokens_per_s": request.min_tokens_per_s,
        "budget_usd": request.budget_usd,
        "max_watts": request.max_watts,
        "circuit": request.circuit,
        "max_gpus": request.max_gpus,
        "gpu_class": request.gpu_class,
        "platform": request.platform,
        "nvlink": request.nvlink,
        "have": [g.id for g in request.have] + ([request.host.describe()] if request.host else []),
        "condition": request.condition,
        "margin": request.margin,
        "engines": list(engines),
        "prices": dict(sorted(request.prices.items())),
        "kwh_price": request.kwh_price,
        "prompt_tokens": inputs.prompt_tokens,
        "output_tokens": inputs.output_tokens,
    }


def plan(request: PlanRequest, context: Context, progress: Callable[[int, int], None] | None = None) -> Plan:
    """The pure core of :func:`rigplan.plan_rigs`: sweep and rank (``elapsed_s`` is 0 and the
    picks carry no prose: the edge times the call and :mod:`rigplan.present` words the reasons).

    Raises:
        RigplanError: an unknown engine or quant, an unsupported architecture, too many owned GPUs.
    """
    _check_plan(request)
    inputs = _plan_inputs(request, context)
    engines = engines_for(request.engine, request.have)
    sweep = Sweep()
    prices = dict(request.prices)
    recs = enumerate_rigs(inputs, engines, request.quant, request.have, context.catalog, prices, sweep, progress)
    if "llama.cpp" in engines and not request.have:
        recs += sweep_offload(inputs, request.quant, context.catalog, prices, sweep)
    effective = request.objective
    if effective != "cheapest" and recs and all(r.speed_tokens_per_s is None for r in recs):
        effective = "cheapest"
    key = rank_key(effective)
    ranked = best_per_rig(recs, key)
    chosen, also = with_standouts(ranked[: request.top], ranked, standouts(recs, effective), key)
    return Plan(
        model=request.model.id,
        objective=effective,
        constraints=_constraints(request, inputs, engines),
        recommendations=chosen,
        also=also,
        considered=sweep.considered,
        qualified=len(ranked),
        estimated=sweep.estimated,
        excluded={k: sweep.excluded[k] for k in CONSTRAINTS if k in sweep.excluded},
        nearest_miss=nearest_miss(sweep, request.model, context) if not chosen else None,
        notes=tuple(_plan_notes(request.objective, recs, chosen, bool(request.have or request.host))),
        elapsed_s=0.0,
        ranked=tuple(ranked),
    )
