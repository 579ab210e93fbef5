"""The estimate contract of design.md §3: signature, nested dict, llama-bench mapping, errors."""

from __future__ import annotations

import inspect
import json

import pytest

from rigplan import InvalidValueError, UnknownModelError, UnsupportedError, estimate
from rigplan.memory.serving import CUDA_DRIVER_RESERVED_BYTES

CONTRACT_PARAMS = [
    "model",
    "rig",
    "quant",
    "engine",
    "context",
    "batch",
    "prompt_tokens",
    "output_tokens",
    "kv_dtype",
    "split",
    "tensor_parallel",
    "pipeline_parallel",
    "gpu_layers",
    "link",
    "lanes",
    "host_ram_gb",
    "use_user_calibration",
]
PER_GPU_FIELDS = {
    "gpu",
    "capacity_bytes",
    "usable_bytes",
    "total_bytes",
    "weights_bytes",
    "kv_cache_bytes",
    "activations_bytes",
    "overhead_bytes",
}
SPEED_FIELDS = {
    "decode_tokens_per_s",
    "decode_tokens_per_s_range",
    "decode_throughput_tokens_per_s",
    "prefill_tokens_per_s",
    "prefill_tokens_per_s_range",
    "ttft_s",
    "engine_profile",
    "calibrated_on_user_results",
}


def test_signature_follows_the_contract():
    params = list(inspect.signature(estimate).parameters.values())
    assert [p.name for p in params[: len(CONTRACT_PARAMS)]] == CONTRACT_PARAMS
    defaults = {p.name: p.default for p in params}
    assert defaults["engine"] == "llama.cpp" and defaults["batch"] == 1
    assert defaults["prompt_tokens"] == 512 and defaults["output_tokens"] == 128
    assert defaults["use_user_calibration"] is True


def test_dict_has_every_contract_field_and_is_json():
    d = estimate("llama-3-8b", "rtx-4090 + 2x rtx-3090").to_dict()
    json.dumps(d)
    assert isinstance(d["fits"], bool)
    assert {"weights_bytes", "host_bytes", "kv_pool_tokens", "max_concurrent_sequences", "per_gpu"} <= set(d["memory"])
    assert [g["gpu"] for g in d["memory"]["per_gpu"]] == ["rtx-4090", "rtx-3090", "rtx-3090"]
    for g in d["memory"]["per_gpu"]:
        assert set(g) >= PER_GPU_FIELDS
        assert all(isinstance(g[k], int) for k in PER_GPU_FIELDS - {"gpu"})
        assert (
            g["total_bytes"] == g["weights_bytes"] + g["kv_cache_bytes"] + g["activations_bytes"] + g["overhead_bytes"]
        )
    assert set(d["speed"]) >= SPEED_FIELDS
    assert {"board_watts", "draw_watts", "psu_watts"} <= set(d["power"])
    for entry in d["provenance"].values():
        assert entry["kind"] in {"catalogue", "measurement", "formula", "estimate", "user-calibrated"}
        assert entry["source"]


def test_capacity_is_what_the_driver_exposes():
    d = estimate("llama-3-8b", "rtx-4090").to_dict()
    assert d["memory"]["per_gpu"][0]["capacity_bytes"] == 24_564 * 2**20


@pytest.mark.parametrize(
    ("test", "prompt", "output"),
    [pytest.param("tg512", 0, 512, id="tg"), pytest.param("pp512", 512, 0, id="pp")],
)
def test_llama_bench_mapping_context_is_prompt_plus_output(test, prompt, output):
    e = estimate("llama-3-8b", "rtx-3090", prompt_tokens=prompt, output_tokens=output)
    assert e.workload.context == 512


def test_vllm_reports_kv_pool_and_concurrency():
    d = estimate("llama-3-8b", "h100-sxm", engine="vllm", context=8192).to_dict()
    m = d["memory"]
    # gpu_memory_utilization (0.9) of the memory CUDA reports (nvidia-smi's total less the driver's share).
    cuda_total = m["per_gpu"][0]["capacity_bytes"] - CUDA_DRIVER_RESERVED_BYTES
    assert m["per_gpu"][0]["usable_bytes"] == int(cuda_total * 0.9)
    # perf-model.md §10.B: ≈448k tokens of KV for Llama-3-8B bf16 on one H100 at u = 0.9.
    assert m["kv_pool_tokens"] == pytest.approx(448_000, rel=0.1)
    assert m["max_concurrent_sequences"] == m["kv_pool_tokens"] // 8192


def test_llama_cpp_reports_no_kv_pool():
    m = estimate("llama-3-8b", "rtx-4090").to_dict()["memory"]
    assert m["kv_pool_tokens"] is None and m["max_concurrent_sequences"] is None


def test_guide_example_llama_2_70b_4bit_on_two_4090s():
    """perf-model.md §10.A: ≈21 GiB of ~24 GiB per GPU at n_ctx 4096 — fits."""
    e = estimate("llama-2-70b", "2x rtx-4090", quant="4bit", context=4096)
    assert e.fits
    for d in e.memory.devices:
        assert 19 * 2**30 < d.total_bytes < 22.5 * 2**30


def test_partial_offload_auto_keeps_some_layers_on_host():
    e = estimate("llama-3-70b", "rtx-4090", quant="q4_k_m", gpu_layers="auto", context=4096)
    assert e.fits
    assert 0 < len(e.memory.placement.host_layers) < 80
    assert e.memory.host_bytes > 15 * 2**30


def test_every_layer_on_gpu_by_default_so_too_big_does_not_fit():
    assert not estimate("llama-3-70b", "rtx-4090", quant="q4_k_m").fits


def test_host_ram_too_small_does_not_fit():
    assert not estimate("llama-3-70b", "rtx-4090", quant="q4_k_m", gpu_layers="auto", host_ram_gb=8).fits


def test_tensor_parallel_divides_weights():
    one = estimate("llama-3-8b", "h100-sxm", engine="vllm").memory.devices[0].weights_bytes
    two = estimate("llama-3-8b", "2x h100-sxm", engine="vllm").memory.devices
    assert sum(d.weights_bytes for d in two) == pytest.approx(one, rel=0.001)


def test_multi_node_uses_pipeline_across_nodes():
    e = estimate("llama-3.1-405b", "2 nodes x 8x h100-sxm", engine="vllm", quant="fp8")
    assert e.memory.placement.tensor_parallel == 8 and e.memory.placement.pipeline_parallel == 2
    assert len(e.memory.devices) == 16


def test_apple_unified_memory_usable_share():
    d = estimate("llama-3-8b", "m2-ultra-192gb").memory.devices[0]
    assert d.usable_bytes == int(d.capacity_bytes * 0.75)


def test_dict_of_architecture_fields():
    fields = {
        "hidden_size": 4096,
        "num_layers": 32,
        "num_heads": 32,
        "num_kv_heads": 8,
        "ffn_size": 14336,
        "vocab_size": 128256,
    }
    ours = estimate(fields, "rtx-4090", quant="q4_k_m")
    catalogue = estimate("llama-3-8b", "rtx-4090", quant="q4_k_m")
    assert ours.memory.weights_bytes == catalogue.memory.weights_bytes


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"prompt_tokens": -1}, InvalidValueError, "prompt_tokens", id="negative-prompt"),
        pytest.param({"output_tokens": -5}, InvalidValueError, "output_tokens", id="negative-output"),
        pytest.param({"context": 100, "prompt_tokens": 512}, InvalidValueError, "smaller than", id="short-context"),
        pytest.param({"context": 10**6}, InvalidValueError, "maximum", id="beyond-max-context"),
        pytest.param({"batch": 0}, InvalidValueError, "batch", id="zero-batch"),
        pytest.param({"kv_dtype": "int3"}, InvalidValueError, "kv_dtype", id="bad-kv-dtype"),
        pytest.param({"lanes": 3}, InvalidValueError, "lanes", id="bad-lanes"),
        pytest.param({"link": "nvlink"}, UnsupportedError, "no NVLink", id="nvlink-on-4090"),
        pytest.param({"gpu_layers": "most"}, InvalidValueError, "gpu_layers", id="bad-gpu-layers"),
        pytest.param({"engine": "vllm", "quant": "q4_k_m"}, UnsupportedError, "cannot run", id="gguf-on-vllm"),
        pytest.param({"split": "diagonal"}, InvalidValueError, "split", id="bad-split"),
        pytest.param({"engine": "vllm", "tensor_parallel": 3}, InvalidValueError, "TP 3", id="tp-mismatch"),
    ],
)
def test_impossible_inputs_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        estimate("llama-3-8b", "rtx-4090", **kwargs)


def test_context_beyond_maximum_allowed_with_force():
    assert estimate("llama-2-7b", "h100-sxm", context=8192, force=True).workload.context == 8192


def test_unknown_model_suggests_nearest():
    with pytest.raises(UnknownModelError, match="llama-3-8b"):
        estimate("llama3-8bb", "rtx-4090")


@pytest.mark.parametrize("engine", ["vllm", "transformers"])
def test_tied_embeddings_are_held_once(engine):
    """Gemma 2 ties its output head to the embedding table: one GPU holds that matrix once."""
    e = estimate("gemma-2-9b", "h100-sxm", engine=engine)
    assert e.memory.devices[0].weights_bytes == pytest.approx(e.memory.weights_bytes, rel=1e-6)


def test_tensor_parallel_must_divide_the_heads():
    with pytest.raises(UnsupportedError, match="64 attention heads do not divide by 3"):
        estimate("llama-3-70b", "3x rtx-3090", engine="vllm", quant="int4")


def test_llama_cpp_caches_mistral_v01_full_context_in_memory_and_speed():
    """llama.cpp runs Mistral v0.1 as a plain llama graph: no window in its cache or its reads."""
    old, new = (
        estimate(m, "rtx-4090", prompt_tokens=16000, output_tokens=128, force=True)
        for m in ("mistral-7b", "mistral-7b-v0.3")
    )
    assert old.memory.devices[0].kv_cache_bytes == new.memory.devices[0].kv_cache_bytes
    assert old.speed.decode_tokens_per_s == pytest.approx(new.speed.decode_tokens_per_s, rel=0.01)


def test_engines_without_offload_refuse_gpu_layers_and_treat_auto_as_all():
    with pytest.raises(UnsupportedError, match="keeps every layer"):
        estimate("llama-3-70b", "rtx-4090", engine="exllamav2", gpu_layers=40)
    auto = estimate("llama-3-70b", "2x rtx-4090", engine="vllm", quant="int4", gpu_layers="auto")
    assert auto.memory.placement.host_layers == ()


def test_host_ram_limit_fails_the_fit_without_touching_gpu_figures():
    free = estimate("llama-3-70b", "rtx-4090", quant="q4_k_m", gpu_layers="auto")
    tight = estimate("llama-3-70b", "rtx-4090", quant="q4_k_m", gpu_layers="auto", host_ram_gb=8)
    assert not tight.fits and free.fits
    assert [d.usable_bytes for d in tight.memory.devices] == [d.usable_bytes for d in free.memory.devices]


@pytest.mark.parametrize(("engine", "kv"), [("llama.cpp", "fp8"), ("vllm", "q4_0"), ("transformers", "fp8")])
def test_kv_dtype_must_be_one_the_engine_offers(engine, kv):
    with pytest.raises(InvalidValueError, match="kv_dtype"):
        estimate("llama-3-8b", "rtx-4090", engine=engine, kv_dtype=kv, quant="bf16" if engine != "llama.cpp" else None)


def test_llama_cpp_pipeline_split_is_its_layer_split():
    layer = estimate("llama-3-8b", "2x rtx-3090", split="layer").to_dict()["memory"]
    pipeline = estimate("llama-3-8b", "2x rtx-3090", split="pipeline").to_dict()["memory"]
    assert layer == pipeline
