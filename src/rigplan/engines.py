"""Inference engines and the rules each one follows when it places and reserves memory.

Engine behaviour is a fact of the engine's code, so it lives here as typed records; the
fitted efficiencies that make speeds come out right live in ``calibration/profiles``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownEngineError, closest

LLAMA_CPP, VLLM, EXLLAMAV2, TRANSFORMERS = "llama.cpp", "vllm", "exllamav2", "transformers"


@dataclass(frozen=True, slots=True)
class Engine:
    """How one inference engine uses GPUs.

    ``family`` groups engines that behave alike: vLLM, SGLang and TensorRT-LLM are
    "vllm"-class (tensor parallel, paged KV pool, a fixed share of GPU memory).
    ``memory_utilization`` is the share of each GPU's memory the engine claims
    (vLLM ``--gpu-memory-utilization``), or None where it allocates what it needs.
    """

    id: str
    name: str
    family: str
    default_quant: str
    default_split: str
    default_kv_dtype: str
    memory_utilization: float | None
    runs_on_apple: bool
    source: str
    kv_dtypes: tuple[str, ...] = ("f16", "bf16")
    offloads_layers: bool = False  # can keep layers in host RAM (llama.cpp -ngl, HF device_map)


# vLLM: "gpu_memory_utilization ... default 0.9" (vLLM CacheConfig docstring).
VLLM_GPU_MEMORY_UTILIZATION = 0.9
# SGLang: --mem-fraction-static is chosen from GPU memory; 0.88 is its value for 24–80 GB cards
# (sglang server_args.py, _handle_gpu_memory_settings).
SGLANG_MEM_FRACTION_STATIC = 0.88
# TensorRT-LLM: kv_cache_free_gpu_mem_fraction 0.9 of memory left after weights
# (TensorRT-LLM KvCacheConfig docs); modelled as a 0.9 share like vLLM.
TRTLLM_FREE_GPU_MEM_FRACTION = 0.9

# KV-cache types each engine offers: llama.cpp -ctk/-ctv (f16, bf16, q8_0, q4_0 …; no fp8),
# vLLM/SGLang/TensorRT-LLM --kv-cache-dtype auto (the model's 16-bit type) or fp8, ExLlamaV2's
# FP16/Q8/Q4 caches (Q8/Q4 sized like q8_0/q4_0), Transformers' 16-bit dynamic cache.
LLAMA_CPP_KV_DTYPES = ("f16", "bf16", "q8_0", "q4_0")
VLLM_KV_DTYPES = ("bf16", "f16", "fp8")

ENGINES: dict[str, Engine] = {
    e.id: e
    for e in (
        Engine(
            "llama.cpp",
            "llama.cpp",
            LLAMA_CPP,
            "q4_k_m",
            "layer",
            "f16",
            None,
            True,
            "ggml-org/llama.cpp docs/multi-gpu.md; tools/llama-bench defaults",
            kv_dtypes=LLAMA_CPP_KV_DTYPES,
            offloads_layers=True,
        ),
        Engine(
            "ollama",
            "Ollama (llama.cpp)",
            LLAMA_CPP,
            "q4_k_m",
            "layer",
            "f16",
            None,
            True,
            "ollama runs llama.cpp; design.md: ollama = llama.cpp",
            kv_dtypes=LLAMA_CPP_KV_DTYPES,
            offloads_layers=True,
        ),
        Engine(
            "vllm",
            "vLLM",
            VLLM,
            "bf16",
            "tensor",
            "bf16",
            VLLM_GPU_MEMORY_UTILIZATION,
            False,
            "vLLM engine arguments (gpu_memory_utilization 0.9)",
            kv_dtypes=VLLM_KV_DTYPES,
        ),
        Engine(
            "sglang",
            "SGLang",
            VLLM,
            "bf16",
            "tensor",
            "bf16",
            SGLANG_MEM_FRACTION_STATIC,
            False,
            "SGLang server arguments (mem_fraction_static)",
            kv_dtypes=VLLM_KV_DTYPES,
        ),
        Engine(
            "tensorrt-llm",
            "TensorRT-LLM",
            VLLM,
            "bf16",
            "tensor",
            "bf16",
            TRTLLM_FREE_GPU_MEM_FRACTION,
            False,
            "TensorRT-LLM KvCacheConfig",
            kv_dtypes=VLLM_KV_DTYPES,
        ),
        Engine(
            "exllamav2",
            "ExLlamaV2",
            EXLLAMAV2,
            "exl2-4.0",
            "layer",
            "f16",
            None,
            False,
            "turboderp/exllamav2 README (gpu_split, Q4/Q6/Q8 cache)",
            kv_dtypes=("f16", "q8_0", "q4_0"),
        ),
        Engine(
            "transformers",
            "HF Transformers",
            TRANSFORMERS,
            "bf16",
            "layer",
            "bf16",
            None,
            True,
            "Hugging Face Transformers docs, device_map='auto'",
            kv_dtypes=("bf16", "f16"),
            offloads_layers=True,
        ),
    )
}


def get_engine(name: str) -> Engine:
    """Look up an engine id, case-insensitively ("vLLM", "llamacpp" and "llama-cpp" resolve)."""
    key = name.strip().lower().replace("llamacpp", "llama.cpp").replace("llama-cpp", "llama.cpp")
    key = {
        "trt-llm": "tensorrt-llm",
        "tensorrt": "tensorrt-llm",
        "hf": "transformers",
        "exllama": "exllamav2",
        "exl2": "exllamav2",
    }.get(key, key)
    if key not in ENGINES:
        raise UnknownEngineError(name, closest(name, ENGINES))
    return ENGINES[key]
