"""KV-cache sizes against published per-token figures (perf-model.md §1.3, DeepSeek-V2 Table 1)."""

from __future__ import annotations

import pytest

from rigplan import arch, load_catalog
from rigplan.memory.kv_cache import kv_bytes, kv_bytes_per_token, kv_heads_fraction
from rigplan.units import KIB


def model(model_id: str):
    return load_catalog().models[model_id]


@pytest.mark.parametrize(
    ("model_id", "kib_per_token"),
    [
        # perf-model.md §1.3: Llama-3-8B (L32, n_kv 8, d_h 128) = 128 KiB/token at fp16.
        pytest.param("llama-3-8b", 128, id="llama-3-8b-gqa"),
        # Llama-2/3-70B (L80, n_kv 8) = 320 KiB/token.
        pytest.param("llama-2-70b", 320, id="llama-2-70b-gqa"),
        pytest.param("llama-3-70b", 320, id="llama-3-70b-gqa"),
        # MHA: 2 · L · d · 2 bytes = 2 · 32 · 4096 · 2 = 512 KiB.
        pytest.param("llama-2-7b", 512, id="llama-2-7b-mha"),
        # MLA: (512 + 64) elements × 61 layers × 2 bytes (no factor 2 for K and V).
        pytest.param("deepseek-v3", 576 * 61 * 2 / 1024, id="deepseek-v3-mla"),
    ],
)
def test_kv_per_token(model_id, kib_per_token):
    m = model(model_id)
    assert kv_bytes_per_token(m, range(m.num_layers), "f16") / KIB == pytest.approx(kib_per_token, rel=1e-9)


def test_eight_k_context_of_llama_3_8b_is_one_gib():
    m = model("llama-3-8b")
    assert kv_bytes(m, range(32), 8192, "f16") == 2**30


@pytest.mark.parametrize(
    ("kv_dtype", "ratio"),
    [("f16", 1.0), ("bf16", 1.0), ("fp8", 0.5), ("q8_0", 34 / 64), ("q4_0", 18 / 64)],
)
def test_kv_dtype_scales_bytes(kv_dtype, ratio):
    m = model("llama-3-8b")
    assert kv_bytes(m, range(32), 4096, kv_dtype) == pytest.approx(kv_bytes(m, range(32), 4096, "f16") * ratio)


def test_gemma_2_local_layers_cache_only_the_window():
    m = model("gemma-2-9b")
    assert m.sliding_window == 4096 and m.sliding_window_pattern == 2
    local = [i for i in range(m.num_layers) if arch.is_local_layer(m, i)]
    assert len(local) == m.num_layers // 2
    full = kv_bytes(m, range(m.num_layers), 4096, "f16")
    assert kv_bytes(m, range(m.num_layers), 8192, "f16") == pytest.approx(full * 1.5)


@pytest.mark.parametrize(
    ("shard", "fraction"),
    [(1, 1.0), (2, 0.5), (8, 1 / 8), (16, 1 / 8)],  # 8 KV heads: TP 16 replicates them
)
def test_tensor_parallel_divides_kv_heads_until_replicated(shard, fraction):
    assert kv_heads_fraction(model("llama-3-70b"), shard) == fraction


def test_mla_latent_is_replicated_across_tensor_parallel_ranks():
    assert kv_heads_fraction(model("deepseek-v3"), 8) == 1.0
