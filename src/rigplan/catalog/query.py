"""Read-only views of the catalogue for listings (CLI tables, web API, JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError, closest
from .load import load_catalog
from .records import GPU, GPU_CLASSES, Catalog, Model, Price, PriceGap

GPU_SORTS = ("memory", "bandwidth", "fp16", "power", "price", "year", "name")


@dataclass(frozen=True, slots=True)
class GPUView:
    gpu: GPU
    price: Price | None
    correction: str | None
    #: why a GPU on sale has no price row (unpriced.toml), when it has none
    price_gap: PriceGap | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def record_dict(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


#: A buyer's preference between new and used prices (``--new`` / ``--used``); None takes the
#: newest market price of either kind.
CONDITIONS = ("new", "used")


def best_price(catalog: Catalog, gpu_id: str, condition: str | None = None) -> Price | None:
    """The price the planner uses: the newest market price ("street" = new at retail, or
    "used"), else the launch price.  ``condition`` "new" takes street, then launch (a new part
    is never priced used); "used" takes a used price, else the new ones.

    >>> best_price(load_catalog(), "rtx-3090", "used").kind
    'used'
    """
    rows = catalog.prices.get(gpu_id, ())

    def newest(kinds: tuple[str, ...]) -> Price | None:
        picked = [p for p in rows if p.kind in kinds]
        return max(picked, key=lambda p: p.as_of) if picked else None

    if condition == "new":
        return newest(("street",)) or newest(("launch",))
    if condition == "used":
        return newest(("used",)) or newest(("street",)) or newest(("launch",))
    return newest(("street", "used")) or newest(("launch",))


def list_gpus(
    *,
    min_memory_gb: float | None = None,
    nvlink: bool = False,
    vendor: str | None = None,
    gpu_class: str | None = None,
    sort: str = "memory",
    catalog: Catalog | None = None,
) -> list[GPUView]:
    """GPUs filtered and sorted (largest first, except name)."""
    catalog = catalog or load_catalog()
    if sort not in GPU_SORTS:
        raise InvalidValueError("sort", f"must be one of {', '.join(GPU_SORTS)}, got {sort!r}")
    if min_memory_gb is not None and not (min_memory_gb >= 0 and min_memory_gb != float("inf")):
        raise InvalidValueError("min_memory", f"must be a number of GB ≥ 0, got {min_memory_gb}")
    for field, value, choices in (
        ("vendor", vendor, sorted({g.vendor for g in catalog.gpus.values()})),
        ("class", gpu_class, list(GPU_CLASSES)),
    ):
        if value is not None and value.lower() not in choices:
            hint = closest(value, choices)
            raise InvalidValueError(
                field, f"{value!r} is not one of {', '.join(choices)}" + (f" — did you mean {hint[0]}?" if hint else "")
            )
    rows = []
    for g in catalog.gpus.values():
        if min_memory_gb is not None and g.memory_gb < min_memory_gb:
            continue
        if nvlink and g.nvlink == "none":
            continue
        if vendor and g.vendor != vendor.lower():
            continue
        if gpu_class and g.gpu_class != gpu_class.lower():
            continue
        fixes = catalog.corrections.get(g.id, ())
        note = "; ".join(f"not {c.claim}: {c.fact}" for c in fixes) or None
        price = best_price(catalog, g.id)
        gaps = catalog.price_gaps.get(g.id, ()) if price is None else ()
        rows.append(GPUView(g, price, note, gaps[0] if gaps else None))
    keys = {
        "memory": lambda v: (v.gpu.memory_gb, v.gpu.bandwidth_gb_per_s),
        "bandwidth": lambda v: v.gpu.bandwidth_gb_per_s,
        "fp16": lambda v: v.gpu.fp16_tensor_tflops or 0.0,
        "power": lambda v: v.gpu.board_power_w,
        "price": lambda v: v.price.usd_per_gpu if v.price else -1.0,
        "year": lambda v: v.gpu.launch_year,
        "name": lambda v: v.gpu.id,
    }
    return sorted(rows, key=keys[sort], reverse=sort != "name")


def gpu_dict(view: GPUView) -> dict[str, Any]:
    out = record_dict(view.gpu)
    out["memory_bytes"] = view.gpu.memory_bytes
    out["price"] = record_dict(view.price) if view.price else None
    out["correction"] = view.correction
    out["price_gap"] = record_dict(view.price_gap) if view.price_gap else None
    return out


def list_models(catalog: Catalog | None = None) -> list[Model]:
    catalog = catalog or load_catalog()
    return sorted(catalog.models.values(), key=lambda m: (m.family, m.published_param_count))


def model_dict(model: Model) -> dict[str, Any]:
    from ..arch import count_parameters

    out = record_dict(model)
    out["computed_param_count"] = count_parameters(model)
    return out


def list_quants() -> list[Any]:
    from ..quant import get_quant, quant_ids

    return [get_quant(q) for q in quant_ids()]


#: The model a quant's whole-model average is worked out on: a common dense model (its mix of
#: wider tensors, attn_v / ffn_down / output, is typical of Llama-shaped models).
TYPICAL_MODEL = "llama-3-8b"
#: The same for mixes made for mixture-of-experts models (their expert tensors set the average).
TYPICAL_MOE_MODEL = "gpt-oss-20b"
#: A mix's average is shown when it differs from its main type's bits by at least this much.
SHOWN_BITS_GAP = 0.05


def quant_bits_text(quant: Any) -> str:
    """The one wording of a quant's bits per weight (``rigplan quants`` and the page): its
    nominal bits, and for a mix that keeps some tensors wider (GGUF k-quant mixes) the average
    over :data:`TYPICAL_MODEL`'s weights too (:data:`TYPICAL_MOE_MODEL`'s for a MoE mix).

    >>> from rigplan.quant import get_quant
    >>> quant_bits_text(get_quant("q4_k_m")), quant_bits_text(get_quant("q8_0"))
    ('4.5 bits main tensors, ~4.9 model average', '8.5 bits')
    """
    average = _average_bits(quant.id)
    if quant.is_gguf and abs(average - quant.bits_per_weight) >= SHOWN_BITS_GAP:
        return f"{quant.bits_per_weight:.3g} bits main tensors, ~{average:.1f} model average"
    return f"{quant.bits_per_weight:.3g} bits"


@functools.lru_cache(maxsize=256)
def _average_bits(quant_id: str) -> float:
    from .. import arch
    from ..quant import get_quant, weights_bytes

    model = load_catalog().models[TYPICAL_MOE_MODEL if quant_id.endswith("_moe") else TYPICAL_MODEL]
    weights = sum(t.n_elements for t in arch.tensors(model))
    return 8 * weights_bytes(model, get_quant(quant_id)) / weights
