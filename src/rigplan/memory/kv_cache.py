"""KV-cache bytes: per token, per layer, per GPU share (GQA/MQA/MLA, sliding window, dtype)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import arch
from ..catalog.records import Model
from ..quant import kv_bytes_per_element


def kv_heads_fraction(model: Model, shard: int) -> float:
    """Share of a layer's KV one tensor-parallel rank holds.

    Each rank keeps ``max(1, n_kv // t)`` KV heads: when t exceeds n_kv the heads are
    replicated, so KV per GPU stops shrinking (vLLM ``get_num_kv_heads``).  MLA's latent
    cache has no heads to divide and is replicated on every rank.
    """
    if shard <= 1:
        return 1.0
    if model.is_mla:
        return 1.0
    return max(1, model.num_kv_heads // shard) / model.num_kv_heads


def honors_window(model: Model, engine_family: str) -> bool:
    """Whether an engine caches (and reads) only the window on sliding-window layers.

    llama.cpp does so only for interleaved sliding-window models (Gemma 2/3: its iSWA cache,
    llama.cpp PR #13194); Mistral v0.1 and Phi-3 run there as plain llama/phi3 graphs with a
    full-context cache.  The other engines honour every window.
    """
    from ..engines import LLAMA_CPP

    return engine_family != LLAMA_CPP or model.sliding_window_pattern >= 2


def kv_bytes(
    model: Model, layers: Iterable[int], context: int, kv_dtype: str, *, shard: int = 1, honor_window: bool = True
) -> int:
    """KV bytes for one sequence of ``context`` tokens over ``layers``.

    >>> from rigplan.catalog import load_catalog
    >>> kv_bytes(load_catalog().models["llama-3-8b"], range(32), 8192, "f16") // 2**20
    1024
    """
    elements = sum(
        arch.kv_elements_per_token(model, i) * arch.kv_tokens_in_layer(model, i, context, honor_window=honor_window)
        for i in layers
    )
    return math.ceil(elements * kv_bytes_per_element(kv_dtype) * kv_heads_fraction(model, shard))


def kv_bytes_per_token(model: Model, layers: Iterable[int], kv_dtype: str, *, shard: int = 1) -> float:
    """KV bytes one more token adds over ``layers`` (full-attention layers; windows ignored)."""
    elements = sum(arch.kv_elements_per_token(model, i) for i in layers)
    return elements * kv_bytes_per_element(kv_dtype) * kv_heads_fraction(model, shard)
