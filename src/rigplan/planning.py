"""``rigplan.plan_rigs``: the public planner, a thin edge over :func:`rigplan.planner.plan`.

It resolves the model and the owned GPUs, reads the user's ``config.toml`` prices and (unless
told not to) the user's calibration, times the sweep, and hands everything to the pure planner.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .catalog import load_catalog
from .catalog.records import GPU, Catalog, Model
from .edge import load_context, load_user_prices, resolve_model_input
from .errors import InvalidValueError
from .headroom import DEFAULT_MARGIN
from .owned_host import OwnedHost, parse_owned_host, split_have
from .planner import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, DEFAULT_TOP, Plan, check_prices, plan
from .present import explain_plan
from .requests import PLAN_OPTIONS, PlanRequest, check_options
from .rig import parse_rig


def _owned(have: Sequence[str] | None, catalog: Catalog) -> tuple[tuple[GPU, ...], OwnedHost | None]:
    """``--have`` → (owned GPUs, the owned PC: "desktop" or "pc:slots=2,lanes=24,psu=850")."""
    for text in have or ():
        if not isinstance(text, str):
            raise InvalidValueError("have", f"each owned GPU must be a rig string like '2x rtx-3090', got {text!r}")
    gpu_items, host_items = split_have(have or ())
    if len(host_items) > 1:
        raise InvalidValueError("have", f"one owned PC at most, got {', '.join(host_items)}")
    owned = [g for text in gpu_items for g in parse_rig(text, catalog).gpus]
    return tuple(owned), (parse_owned_host(host_items[0], catalog) if host_items else None)


def plan_rigs(
    model: str | Mapping[str, Any] | Model,
    *,
    quant: str = "any",
    context: int | None = None,
    users: int = 1,
    min_tokens_per_s: float | None = None,
    budget_usd: float | None = None,
    max_watts: float | None = None,
    circuit: str | None = None,
    max_gpus: int | None = None,
    gpu_class: str | None = None,
    platform: str | None = None,
    nvlink: bool = False,
    have: Sequence[str] = (),
    engine: str | None = None,
    objective: str = "cheapest",
    top: int = DEFAULT_TOP,
    prices: Mapping[str, float] | None = None,
    kwh_price: float | None = None,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    use_user_config: bool = True,
    use_user_calibration: bool = True,
    catalog: Catalog | None = None,
    progress: Callable[[int, int], None] | None = None,
    condition: str | None = None,
    include_discontinued: bool = False,
    margin: float = DEFAULT_MARGIN,
) -> Plan:
    """Rigs that run ``model`` under the constraints, ranked by ``objective`` and explained.

    >>> plan = plan_rigs("llama-2-70b", quant="4bit", use_user_config=False, use_user_calibration=False)
    >>> plan.recommendations[0].estimate.fits
    True

    Args:
        quant, context, users, …, margin: :data:`rigplan.PLAN_OPTIONS` (type, default, range, help).
            A budget excludes unpriced GPUs; a circuit must carry each node; the margin is kept
            free on every GPU (vLLM-class pools keep their own 10 %).
        have: GPUs already owned ("rtx-3090", "2x rtx-3090"); rigs add to them at no cost. "desktop"
            or "pc:slots=2,lanes=24,psu=850": the PC you own; only added parts are paid.
        prices: {gpu id: usd} overrides ("yours"); the user's config.toml ``[prices]`` too
            unless ``use_user_config`` is False.
        catalog, progress: the catalogue (default: the shipped one); a callback (done, total).

    Raises:
        RigplanError: unknown names, impossible values, an unsupported architecture.
    """
    started = time.perf_counter()
    options: dict[str, Any] = {name: value for name, value in locals().items() if name in PLAN_OPTIONS}
    check_options(PLAN_OPTIONS, {k: v for k, v in options.items() if k not in ("quant", "context", "engine")})
    catalog = catalog or load_catalog()
    model_ = resolve_model_input(model, catalog)
    all_prices = load_user_prices(catalog=catalog) if use_user_config else {}
    all_prices |= check_prices(prices, catalog) if prices else {}
    owned, host = _owned(have, catalog)
    request = PlanRequest(model=model_, have=owned, host=host, prices=all_prices, **options)
    result = explain_plan(plan(request, load_context(catalog, use_user_calibration=use_user_calibration), progress))
    return dataclasses.replace(result, elapsed_s=time.perf_counter() - started)


__all__ = ["plan_rigs"]
