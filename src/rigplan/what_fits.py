"""``rigplan.what_fits``: the reverse question — "I have these GPUs: what can I run, how fast?"

Every catalogue model × quant that fits the rig at a base context, ranked biggest model first
(then most bits), each with the longest context that still fits and its decode speed with a
range at the base context.  Memory checks are cheap (no speed model): they run for every
pair; speeds run only for the rows returned.

>>> r = what_fits("rtx-4090", models=["llama-3-8b", "llama-3-70b"])
>>> [(row.model, row.quant) for row in r.rows][:2]
[('llama-3-8b', 'f16'), ('llama-3-8b', 'q8_0')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .catalog import load_catalog
from .catalog.records import Catalog, Model
from .edge import resolve_model_input, resolve_rig_input
from .engines import get_engine
from .errors import InvalidValueError, RigplanError
from .estimate import estimate
from .results import Estimate
from .rig import Rig

#: The planner's default context: the speed of every row is given at this context.
BASE_CONTEXT = 4096
#: Contexts tried when looking for the longest that fits (then the model's maximum itself):
#: the usual steps of model cards and llama.cpp's ``-c``.
CONTEXT_LADDER = (4096, 8192, 16384, 32768, 65536, 131072, 262144)
#: Quants tried per engine family, fewest bits first: the guide's 4/8/16-bit of design.md §3.
DEFAULT_QUANTS = {"llama.cpp": ("q4_k_m", "q8_0", "f16"), "other": ("int4", "fp8", "bf16")}
#: Rows returned by default (a speed estimate each, ~20–40 ms).
DEFAULT_LIMIT = 20
#: The most rows one call may ask for: bounds the speed work of one question.
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class FitRow:
    """One model × quant that fits: the longest context that fits, and its speed at the base context."""

    model: str
    quant: str
    parameters: int
    bits_per_weight: float
    max_context: int
    memory_bytes: int
    decode_tokens_per_s: float | None
    decode_tokens_per_s_range: tuple[float, float] | None
    prefill_tokens_per_s: float | None
    offloaded: bool
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WhatFits:
    """The answer of :func:`what_fits`: rows ranked, and how many pairs did not fit."""

    rig: str
    engine: str
    base_context: int
    rows: tuple[FitRow, ...]
    fitting_pairs: int
    checked_pairs: int
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON, as `rigplan` prints with ``--json``."""
        out = asdict(self)
        out["rows"] = [asdict(r) for r in self.rows]
        return out


@dataclass(frozen=True, slots=True)
class _Candidate:
    model: Model
    quant: str
    bits: float
    max_context: int
    base: Estimate


def what_fits(
    rig: str | Rig,
    *,
    engine: str = "llama.cpp",
    models: Iterable[str | Model] | None = None,
    quants: Sequence[str] | None = None,
    min_tokens_per_s: float | None = None,
    limit: int = DEFAULT_LIMIT,
    catalog: Catalog | None = None,
) -> WhatFits:
    """Which catalogue models (× quants) ``rig`` runs, ranked biggest first, with speed ranges.

    Args:
        rig: rig string ("2x rtx-3090") or a :class:`Rig`.
        engine: engine id; its family picks the default quants (:data:`DEFAULT_QUANTS`).
        models: model ids (or records, paths, repo ids) to consider (None: the whole catalogue).
        quants: quant ids to try (None: the engine's 4-, 8- and 16-bit formats).
        min_tokens_per_s: keep only rows whose decode speed at the base context reaches this.
        limit: rows returned (1…:data:`MAX_LIMIT`); each costs one speed estimate.

    Raises:
        InvalidValueError: a limit out of range.
        UnknownModelError, UnknownGPUError, UnknownQuantError: a name not in the catalogue.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidValueError("limit", f"must be 1–{MAX_LIMIT}, got {limit}")
    cat = catalog or load_catalog()
    the_rig = resolve_rig_input(rig, cat)
    eng = get_engine(engine)
    tried = tuple(quants) if quants else DEFAULT_QUANTS["llama.cpp" if eng.family == "llama.cpp" else "other"]
    chosen = [resolve_model_input(m, cat) for m in models] if models is not None else list(cat.models.values())
    candidates: list[_Candidate] = []
    for model in chosen:
        candidates += _fitting_quants(model, the_rig, tried, eng.id, cat)
    candidates.sort(key=lambda c: (-c.model.published_param_count, -c.bits, c.model.id))
    rows: list[FitRow] = []
    for cand in candidates:
        if len(rows) >= limit:
            break
        row = _with_speed(cand, the_rig, eng.id, cat)
        if min_tokens_per_s is None or (row.decode_tokens_per_s or 0.0) >= min_tokens_per_s:
            rows.append(row)
    return WhatFits(
        rig=the_rig.describe(),
        engine=eng.id,
        base_context=BASE_CONTEXT,
        rows=tuple(rows),
        fitting_pairs=len(candidates),
        checked_pairs=len(chosen) * len(tried),
        assumptions=(
            f"speeds at a {BASE_CONTEXT:,}-token context (or the model's maximum if shorter), "
            "512 prompt and 128 output tokens, one sequence",
            "every layer on the GPUs (no offload to host RAM)",
            f"longest context searched over {', '.join(f'{c:,}' for c in CONTEXT_LADDER)} and the model's maximum",
        ),
    )


def _fitting_quants(model: Model, rig: Rig, quants: Sequence[str], engine: str, cat: Catalog) -> list[_Candidate]:
    out = []
    for quant in quants:
        base_context = min(BASE_CONTEXT, model.max_context)
        base = _memory(model, rig, quant, engine, base_context, cat)
        if base is None or not base.fits:
            continue
        out.append(
            _Candidate(
                model=model,
                quant=base.quant.id,
                bits=base.quant.bits_per_weight,
                max_context=_longest_context(model, rig, base.quant.id, engine, cat, base_context),
                base=base,
            )
        )
    return out


def _longest_context(model: Model, rig: Rig, quant: str, engine: str, cat: Catalog, fits_at: int) -> int:
    """The longest context of the ladder (and the model's maximum) that fits, by bisection."""
    steps = sorted({c for c in CONTEXT_LADDER if fits_at < c < model.max_context} | {model.max_context} - {fits_at})
    best, low, high = fits_at, 0, len(steps) - 1
    while low <= high:
        mid = (low + high) // 2
        e = _memory(model, rig, quant, engine, steps[mid], cat)
        if e is not None and e.fits:
            best, low = steps[mid], mid + 1
        else:
            high = mid - 1
    return best


def _memory(model: Model, rig: Rig, quant: str, engine: str, context: int, cat: Catalog) -> Estimate | None:
    """Memory at ``context`` (no generation: the speed model is not run); None if unsupported."""
    try:
        return estimate(
            model, rig, quant=quant, engine=engine, context=context, prompt_tokens=0, output_tokens=0, catalog=cat
        )
    except RigplanError:  # e.g. fp8 on a GPU without it, a TP size that does not divide the heads
        return None


def _with_speed(cand: _Candidate, rig: Rig, engine: str, cat: Catalog) -> FitRow:
    context = min(BASE_CONTEXT, cand.model.max_context)
    try:
        e: Estimate | None = estimate(cand.model, rig, quant=cand.quant, engine=engine, context=context, catalog=cat)
    except RigplanError:
        e = None
    d = (e or cand.base).to_dict()
    speed = d["speed"] if e is not None else {}
    rng = speed.get("decode_tokens_per_s_range")
    return FitRow(
        model=cand.model.id,
        quant=cand.quant,
        parameters=cand.model.published_param_count,
        bits_per_weight=cand.bits,
        max_context=cand.max_context,
        memory_bytes=sum(g["total_bytes"] for g in d["memory"]["per_gpu"]),
        decode_tokens_per_s=speed.get("decode_tokens_per_s"),
        decode_tokens_per_s_range=tuple(rng) if rng else None,
        prefill_tokens_per_s=speed.get("prefill_tokens_per_s"),
        offloaded=bool(d["memory"].get("host_layers")),
        warnings=tuple(d.get("warnings", ())),
    )
