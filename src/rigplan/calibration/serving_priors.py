"""Prior serving profiles: the batch model's parameters before (or without) a fit, with sources.

``serving_fit.py`` starts from these, fits what the serving rows can tell and writes
``serving/<engine>.toml``.  Scheduler defaults are facts of each engine's code (cited).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..speed.batch import ServingBehaviour, ServingParameters

#: Range of a serving profile with no rows: ×0.5 … ×2 (the spread of published vLLM-class
#: single-user speeds for one model and rig across builds and flags is about 2× [D]).
PRIOR_RANGE_LOG = math.log(2.0)


@dataclass(frozen=True, slots=True)
class ServingPrior:
    name: str
    engines: tuple[str, ...]
    parameters: ServingParameters
    behaviour: ServingBehaviour
    source: str
    notes: str
    #: Prior uncertainty (log-sd) of each parameter the fit may move (MAP fit).
    prior_log_sd: tuple[tuple[str, float], ...] = (
        ("memory_efficiency_hbm", 0.2),
        ("memory_efficiency_gddr", 0.2),
        ("moe_memory_efficiency", 0.7),
        ("kernel_floor_s", 1.0),
        ("step_overhead_s", 1.0),
        ("tensor_efficiency", 0.3),
    )


_PARAMETERS = ServingParameters(
    # "roughly 77% of the memory-bandwidth ceiling" on A100 [S:MUSGRAVE]; H100 GEMV 0.76 [M].
    memory_efficiency_hbm=0.78,
    memory_efficiency_gddr=0.80,
    # Fused-MoE grouped GEMMs at small batch: tiles sized for many tokens per expert [D].
    moe_memory_efficiency=0.6,
    # A kernel inside a CUDA graph costs ≈ 2–5 µs even when it has almost no work [D: Nsight
    # traces of vLLM decode, e.g. RMSNorm/rotary kernels of 2–4 µs on H100].
    kernel_floor_s=4e-6,
    # Scheduler + sampling + output processing per step after vLLM V1 [S:VLLM-060]: ≈0.5 ms [D].
    step_overhead_s=0.5e-3,
    # perf-model §4: η_c 0.45–0.65 for vLLM/TRT-LLM/SGLang on H100/A100 at large batches.
    tensor_efficiency=0.55,
)

VLLM = ServingPrior(
    name="vllm-serving",
    engines=("vllm",),
    parameters=_PARAMETERS,
    # vllm/engine/arg_utils.py get_batch_defaults (v0.10+): GPUs with ≥ 70 GiB that are not an
    # A100 get max_num_seqs 1024 and max_num_batched_tokens 8192 for `vllm serve` (16384 for
    # the offline LLM class); others 256 and 2048 (8192 offline).
    behaviour=ServingBehaviour(
        max_num_seqs_large_gpu=1024,
        max_num_seqs_small_gpu=256,
        large_gpu_gib=70.0,
        max_num_batched_tokens_large_gpu=8192,
        max_num_batched_tokens_small_gpu=2048,
        custom_all_reduce=True,
        expert_parallel=False,
    ),
    source="vllm-project/vllm vllm/engine/arg_utils.py get_batch_defaults; perf-model.md §3.2, §4, §6",
    notes="vLLM V1 (`vllm serve` defaults: CUDA graphs, chunked prefill, custom all-reduce, TP within a node).",
)
SGLANG = ServingPrior(
    name="sglang-serving",
    engines=("sglang",),
    parameters=_PARAMETERS,
    # SGLang sizes max_running_requests from the KV pool (no fixed cap assumed below 4096) and
    # uses chunked_prefill_size 8192 on large GPUs, 2048 on small ones
    # (python/sglang/srt/server_args.py _handle_gpu_memory_settings) [D for the cap].
    behaviour=ServingBehaviour(
        max_num_seqs_large_gpu=4096,
        max_num_seqs_small_gpu=4096,
        large_gpu_gib=70.0,
        max_num_batched_tokens_large_gpu=8192,
        max_num_batched_tokens_small_gpu=2048,
        custom_all_reduce=True,
        expert_parallel=False,
    ),
    source="sglang python/sglang/srt/server_args.py (chunked_prefill_size); vLLM priors by assumption",
    notes="SGLang (radix cache, CUDA graphs, chunked prefill); parameters shared with vLLM until rows say otherwise.",
)
TENSORRT_LLM = ServingPrior(
    name="tensorrt-llm-serving",
    engines=("tensorrt-llm",),
    parameters=ServingParameters(
        memory_efficiency_hbm=0.80,
        memory_efficiency_gddr=0.80,
        moe_memory_efficiency=0.6,
        kernel_floor_s=3e-6,
        # C++ executor: smaller host overhead per step than a Python scheduler [D].
        step_overhead_s=0.2e-3,
        tensor_efficiency=0.6,
    ),
    # TensorRT-LLM LLM API / trtllm-bench defaults: max_batch_size 2048, max_num_tokens 8192.
    behaviour=ServingBehaviour(
        max_num_seqs_large_gpu=2048,
        max_num_seqs_small_gpu=2048,
        large_gpu_gib=70.0,
        max_num_batched_tokens_large_gpu=8192,
        max_num_batched_tokens_small_gpu=8192,
        custom_all_reduce=True,
        expert_parallel=False,
    ),
    source="NVIDIA/TensorRT-LLM BuildConfig defaults (max_batch_size 2048, max_num_tokens 8192); perf-overview.md",
    notes="TensorRT-LLM PyTorch backend (trtllm-bench, CUDA graphs with padding).",
)

SERVING_PRIORS: tuple[ServingPrior, ...] = (VLLM, SGLANG, TENSORRT_LLM)
