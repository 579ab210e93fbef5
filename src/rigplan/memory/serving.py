"""Start-up memory of the serving engines (vLLM, SGLang, TensorRT-LLM) as each one computes it.

Each engine sizes its KV pool once, at start-up, from what is left of a share of the GPU:

- **vLLM** (``vllm/v1/worker/gpu_worker.py``, ``determine_available_memory``): the KV pool is
  ``gpu_memory_utilization × total − (weights + activation peak of the profiling run +
  non-torch memory)``.  ``total`` is what CUDA reports (``torch.cuda.mem_get_info``), a little
  under nvidia-smi's figure.  CUDA graphs are captured *after* the pool is allocated and, with
  the CUDA context, live in the ``1 − gpu_memory_utilization`` margin.
- **SGLang** (``python/sglang/srt/model_executor/model_runner.py``, ``profile_max_num_token``):
  ``mem_fraction_static × free memory at start − (weights + what was allocated beside them)``;
  activations and CUDA graphs live in the rest.  The default fraction is computed from the
  GPU's memory (``server_args.py`` ``_handle_gpu_memory_settings``, sglang PR #10975).
- **TensorRT-LLM** (``KvCacheConfig.free_gpu_memory_fraction``, default 0.9): that share of the
  memory still free after weights and runtime buffers.  No start-up logs are in the project's
  data, so its activation term is vLLM's forward term (a prior).

The constants of vLLM's profiling run are fitted to its start-up logs
(calibration/measurements/serving_memory.csv: llm-d-planner's vLLM 0.19.0 sweep on H100); its
sampler term follows vLLM's version as its source does (a sort-based top-k/top-p before 0.17,
:data:`VLLM_SORT_SAMPLER_LOGIT_COPIES`).  ``rigplan.calibration.serving_memory`` reports how far
off the model is on logs it was not fitted on (vLLM 0.15–0.18, V0, other sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import GPU, Model
from ..units import GIB, MIB
from .buffers import TORCH_CUDA_CONTEXT_BYTES

# ---- what CUDA reports ------------------------------------------------------------------

#: nvidia-smi's Total (the catalogue's ``memory_mib``) less what the driver keeps: vLLM logs
#: 79.19 GiB on an H100 whose nvidia-smi Total is 81,559 MiB (−468 MiB, llm-d-planner logs)
#: and total_gpu_memory=23.58 GiB on an RTX 3090 of 24,576 MiB (−430 MiB, vllm#10517).
CUDA_DRIVER_RESERVED_BYTES = 450 * MIB
#: The CUDA context and the kernels a PyTorch engine loads (outside its memory accounting).
CUDA_CONTEXT_BYTES = TORCH_CUDA_CONTEXT_BYTES

# ---- vLLM's profiling run (V1) -------------------------------------------------------------

#: `vllm serve` scheduler defaults (vllm/engine/arg_utils.py get_batch_defaults): GPUs with at
#: least 70 GiB (not A100) get max_num_batched_tokens 8192 and max_num_seqs 1024; others 2048
#: and 256.  The profiling run pushes max_num_batched_tokens tokens through the model and then
#: samples min(max_num_seqs, tokens) rows of logits.
VLLM_LARGE_GPU_BYTES = 70 * GIB
VLLM_PROFILE_TOKENS = (8192, 2048)  # large GPU, small GPU
VLLM_PROFILE_SEQS = (1024, 256)
#: Fitted on the 0.19.0 H100 sweep (44 rows of catalogue models; mean |error| 5.5 %):
#: a fixed part of the peak (it also holds the Triton top-k/top-p kernel's [SMs × vocabulary]
#: f32 buffer, 80 MB on an H100 at 152k tokens), the sampler's live f32 copies of the
#: [seqs × vocabulary] logits, and the forward pass's live bf16 rows of the FFN width per token
#: (gate+up output, activation, down input).
#:
#: The sampler term is what ``_dummy_sampler_run`` (vllm/v1/worker/gpu_model_runner.py) does:
#: it samples every row with top_k = vocabulary − 1 and top_p = 0.9, no penalties.  Its peak,
#: in f32 copies of the logits (vLLM 0.15.0–0.19.0 wheels read; the fit lands on the same 3.5):
#:
#: - vLLM ≥ 0.17 (vllm#33538, "Triton-based Top-k and Top-p sampler kernels", in 0.17.0):
#:   ``apply_top_k_top_p`` masks in place with a Triton kernel once ≥ 8 rows are sampled; the
#:   peak is in ``random_sample``: the bf16 logits (½) + their f32 copy + the softmax
#:   probabilities + the exponential noise ``q`` = 3.5.
#: - vLLM V1 before 0.17: ``apply_top_k_top_p`` sorts the f32 logits (``logits.sort``).
#:   PyTorch sorts ≥ 128 rows with ``segmented_sort_pairs`` (aten/src/ATen/native/cuda/
#:   SortStable.cu): it allocates int64 ``reverse_indices`` (2) and cub's non-double-buffer
#:   SortPairs keeps alternate key and int64 value buffers in its temp storage (1 + 2), beside
#:   the sorted values (1) and int64 indices (2) it returns: ½ + 1 + 1 + 2 + 2 + 1 + 2 = 9.5.
#:   Checked against llm-d-planner's version table (Qwen3-14B on an H100): 5.64 GiB logged in
#:   0.15/0.16, 0.18 + 9.5 × 0.58 = 5.69 GiB modelled; 2.23 in 0.17/0.18, 2.21 modelled.
VLLM_PROFILE_BASE_BYTES = round(0.18 * GIB)
VLLM_SAMPLER_LOGIT_COPIES = 3.5
VLLM_SORT_SAMPLER_LOGIT_COPIES = 9.5
VLLM_FORWARD_FFN_ROWS = 4.0
#: The first vLLM release with the Triton top-k/top-p sampler, and its wheel's build date (for
#: logs that print no version but a date).
VLLM_TRITON_SAMPLER_VERSION = (0, 17)
VLLM_TRITON_SAMPLER_DATE = "2026-03-06"


@dataclass(frozen=True, slots=True)
class ProfileRun:
    """The three constants of vLLM's profiling peak (defaults: the fitted values above)."""

    base_bytes: float = VLLM_PROFILE_BASE_BYTES
    sampler_copies: float = VLLM_SAMPLER_LOGIT_COPIES
    forward_rows: float = VLLM_FORWARD_FFN_ROWS
    #: vLLM V0 (before the V1 engine) profiled a whole max_model_len prompt with 256 sequences.
    tokens: int | None = None
    seqs: int | None = None


VLLM_PROFILE = ProfileRun()
#: Memory outside torch's allocator that grows during profiling: 0.24–0.27 GiB on one H100,
#: 2.06–2.21 GiB per rank with tensor parallelism on H100 SXM (llm-d-planner 0.19.0 logs, TP 2
#: and 4): NCCL's communicators, most of it NVLink SHARP (NVLS) buffers, which NCCL sets up on
#: NVSwitch systems of NVLink 4 and later only.
VLLM_NON_TORCH_SINGLE_BYTES = round(0.25 * GIB)
VLLM_NON_TORCH_TENSOR_PARALLEL_BYTES = round(2.1 * GIB)
NVLS_MIN_NVLINK_GENERATION = 4
#: Without NVLS (PCIe cards, A100): NCCL's ring/tree buffers (NCCL_BUFFSIZE 4 MiB × channels ×
#: peers) plus vLLM's custom all-reduce — a prior of 0.5 GiB (no start-up log in the data).
VLLM_NON_TORCH_TENSOR_PARALLEL_PCIE_BYTES = round(0.5 * GIB)
#: CUDA graphs of the decode batch sizes, captured after the KV pool: fitted on the same logs
#: as 0.40 GiB + 0.016 GiB per layer (0.5–1.9 GiB; mean |error| 8 %).
CUDA_GRAPH_BASE_BYTES = round(0.40 * GIB)
CUDA_GRAPH_PER_LAYER_BYTES = round(0.016 * GIB)
#: KV blocks hold 16 tokens (vLLM's default block_size); the pool is a whole number of blocks.
VLLM_BLOCK_TOKENS = 16

# ---- SGLang's default mem_fraction_static ------------------------------------------------

#: chunked_prefill_size and cuda_graph_max_bs by GPU memory (MiB upper bound, chunk, graph batch
#: for TP < 4, graph batch for TP ≥ 4), then reserved MiB = 512 + 1.5 × max(chunk, 2048) +
#: 2 × graph batch + TP × PP / 8 × 1024, at least 10 GiB above 60 GiB; fraction =
#: (memory − reserved) / memory (sglang server_args.py _handle_gpu_memory_settings).
#: Checked: 0.911 printed on a 288 GB MI355X (sglang#18263).
SGLANG_MEMORY_BUCKETS: tuple[tuple[int, int, int, int], ...] = (
    (35 * 1024, 2048, 24, 80),
    (60 * 1024, 4096, 32, 160),
    (160 * 1024, 8192, 256, 512),
    (2**40, 16384, 512, 512),
)
SGLANG_RESERVED_BASE_MIB = 512
SGLANG_RESERVED_MIN_LARGE_MIB = 10 * 1024
SGLANG_LARGE_GPU_MIB = 60 * 1024

#: TensorRT-LLM KvCacheConfig.free_gpu_memory_fraction default.
TRTLLM_FREE_GPU_MEMORY_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class StartupMemory:
    """One GPU of a serving engine after start-up: what it holds and the KV pool it made.

    ``budget_bytes`` is the share the engine claims (weights, activations, non-torch memory
    and the KV pool); ``margin_bytes`` (CUDA context and graphs) must fit beside it.
    """

    budget_bytes: int
    weights_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    kv_cache_bytes: int
    margin_bytes: int

    @property
    def fits(self) -> bool:
        return self.budget_bytes >= self.weights_bytes + self.activation_bytes + self.non_torch_bytes


def cuda_total_bytes(gpu: GPU) -> int:
    """GPU memory as CUDA reports it (what the engines multiply their fractions by)."""
    return gpu.memory_bytes - CUDA_DRIVER_RESERVED_BYTES


def vllm_profile_size(gpu: GPU) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) of `vllm serve` on ``gpu``."""
    large = gpu.memory_bytes >= VLLM_LARGE_GPU_BYTES and not gpu.id.startswith("a100")
    index = 0 if large else 1
    return VLLM_PROFILE_TOKENS[index], VLLM_PROFILE_SEQS[index]


def ffn_width(model: Model) -> int:
    """Intermediate width one token's FFN computes (routed + shared experts for MoE)."""
    routed = model.moe_ffn_size * (max(model.moe_active_experts, 1) + model.moe_shared_experts)
    return max(model.ffn_size, routed if model.is_moe else 0)


def vllm_activation_bytes(
    model: Model, gpu: GPU, shard: int, *, samples: bool, profile: ProfileRun = VLLM_PROFILE
) -> int:
    """Peak of vLLM's profiling run on one rank: forward of the token budget, then the sampler.

    ``samples``: the rank computes logits (every tensor-parallel rank of the last pipeline
    stage; the logits are gathered, so the sampler term is not divided by tensor parallelism).
    """
    tokens, seqs = vllm_profile_size(gpu)
    tokens, seqs = profile.tokens or tokens, profile.seqs or seqs
    forward = profile.forward_rows * tokens * ffn_width(model) * 2 / max(shard, 1)
    sampler = profile.sampler_copies * min(seqs, tokens) * model.vocab_size * 4 if samples else 0.0
    return round(profile.base_bytes + max(forward, sampler))


def non_torch_bytes(gpu: GPU, tensor_parallel: int) -> int:
    """Memory outside torch's allocator on one rank (NCCL and all-reduce buffers under TP)."""
    if tensor_parallel <= 1:
        return VLLM_NON_TORCH_SINGLE_BYTES
    nvls = gpu.form_factor == "sxm" and (gpu.nvlink_generation or 0) >= NVLS_MIN_NVLINK_GENERATION
    return VLLM_NON_TORCH_TENSOR_PARALLEL_BYTES if nvls else VLLM_NON_TORCH_TENSOR_PARALLEL_PCIE_BYTES


def cuda_graph_bytes(layers: int) -> int:
    return CUDA_GRAPH_BASE_BYTES + CUDA_GRAPH_PER_LAYER_BYTES * layers


def sglang_mem_fraction_static(gpu: GPU, tensor_parallel: int, pipeline_parallel: int = 1) -> float:
    """SGLang's default ``--mem-fraction-static`` for ``gpu`` (its own heuristic, rounded to 3)."""
    memory_mib = cuda_total_bytes(gpu) / MIB
    chunk, graph_small, graph_large = next(b[1:] for b in SGLANG_MEMORY_BUCKETS if memory_mib < b[0])
    graph_bs = graph_small if tensor_parallel < 4 else graph_large
    reserved = SGLANG_RESERVED_BASE_MIB + 1.5 * max(chunk, 2048) + 2 * graph_bs
    reserved += tensor_parallel * pipeline_parallel / 8 * 1024
    if memory_mib > SGLANG_LARGE_GPU_MIB:
        reserved = max(reserved, SGLANG_RESERVED_MIN_LARGE_MIB)
    return round((memory_mib - reserved) / memory_mib, 3)


@dataclass(frozen=True, slots=True)
class ServingShare:
    """One rank of a serving engine: its GPU, weights, and its place in the parallel layout."""

    gpu: GPU
    weights_bytes: int
    layers: int
    tensor_parallel: int
    samples: bool


def startup_memory(
    engine_id: str,
    model: Model,
    share: ServingShare,
    fraction: float | None = None,
    *,
    profile: ProfileRun = VLLM_PROFILE,
) -> StartupMemory:
    """Memory of one rank after ``engine_id`` started, with the KV pool it allocated.

    ``fraction``: vLLM's gpu_memory_utilization, SGLang's mem_fraction_static or TensorRT-LLM's
    free_gpu_memory_fraction; None takes the engine's default.
    """
    total = cuda_total_bytes(share.gpu)
    tp = share.tensor_parallel
    graphs = cuda_graph_bytes(share.layers)
    comm = non_torch_bytes(share.gpu, tp)
    if engine_id == "sglang":
        f = sglang_mem_fraction_static(share.gpu, tp) if fraction is None else fraction
        budget = int(f * (total - CUDA_CONTEXT_BYTES))
        kv = budget - share.weights_bytes - comm
        return StartupMemory(budget, share.weights_bytes, 0, comm, max(kv, 0), CUDA_CONTEXT_BYTES + graphs)
    activations = vllm_activation_bytes(model, share.gpu, tp, samples=share.samples, profile=profile)
    if engine_id == "tensorrt-llm":
        f = TRTLLM_FREE_GPU_MEMORY_FRACTION if fraction is None else fraction
        free = total - CUDA_CONTEXT_BYTES - share.weights_bytes - activations - comm
        budget = total - CUDA_CONTEXT_BYTES - int((1 - f) * max(free, 0))
        return StartupMemory(budget, share.weights_bytes, activations, comm, int(f * max(free, 0)), CUDA_CONTEXT_BYTES)
    f = 0.9 if fraction is None else fraction
    budget = int(f * total)
    kv = budget - share.weights_bytes - activations - comm
    return StartupMemory(budget, share.weights_bytes, activations, comm, max(kv, 0), CUDA_CONTEXT_BYTES + graphs)


def pool_tokens(kv_cache_bytes: int, bytes_per_token: float, *, block_tokens: int = VLLM_BLOCK_TOKENS) -> int:
    """Tokens the KV pool holds: whole blocks of ``block_tokens``."""
    if bytes_per_token <= 0 or kv_cache_bytes <= 0:
        return 0
    return int(kv_cache_bytes // (bytes_per_token * block_tokens)) * block_tokens
