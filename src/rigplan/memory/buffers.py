"""Activation / compute buffers and fixed runtime overheads, per engine.

llama.cpp (ggml-alloc) reserves one compute buffer per device sized by the peak of the
graph for one micro-batch of ``n_ubatch`` tokens.  Without flash attention the peak is the
attention score matrix KQ (f32, n_ctx × n_ubatch × n_head) plus the mask and a few
activation rows, or the FFN intermediates, or the logits on the device holding the output.
This reproduces llama.cpp's logs (calibration/measurements/llamacpp_memory_breakdown.csv):
Llama-3-8B n_ctx 8192 → 560 MiB on one GPU, 640 MiB per GPU with pipeline parallelism.
"""

from __future__ import annotations

from ..catalog.records import Model
from ..units import MIB

F32 = 4
BF16 = 2

# llama-bench / llama-server defaults (tools/llama-bench: n_batch 2048, n_ubatch 512).
LLAMA_CPP_N_UBATCH = 512
# Live f32 rows of n_embd × n_ubatch beside KQ at the attention peak (input, residual, Q, K,
# V at GQA width …), fitted to llama.cpp's logs: Llama-3-8B n_ctx 8192 → 560 MiB = 512 KQ +
# 16 mask + 3.5 × 8; Llama-2-13B n_ctx 512 → 75 MiB = 40 + 1 + 3.5 × 10.
LLAMA_CPP_ATTENTION_ROWS = 3.5
# Multi-GPU layer split keeps GGML_SCHED_MAX_COPIES = 4 copies of the graph inputs for
# pipeline parallelism (ggml-backend.c); the mask is the large input.  Plus the activation
# handed between devices, in and out.  Fits 640 MiB (vs 560) on 2–8 GPUs.
GGML_SCHED_MAX_COPIES = 4
LLAMA_CPP_PIPELINE_ROWS = 2
# Host (pinned) buffer of the input embeddings: 3 rows of n_embd × n_ubatch f32, ×copies
# with pipeline parallelism (24 MiB on 1 GPU, 72 MiB on several, for Llama-3-8B).
LLAMA_CPP_HOST_INPUT_ROWS = 3


def llama_cpp_compute_bytes(
    model: Model,
    context: int,
    *,
    holds_output: bool,
    pipeline: bool,
    flash_attention: bool = False,
    n_ubatch: int = LLAMA_CPP_N_UBATCH,
) -> int:
    """Compute buffer llama.cpp reserves on one device (worst case of the graph)."""
    d, tokens = model.hidden_size, min(n_ubatch, max(context, 1))
    mask = context * tokens * F32
    if flash_attention:
        attention = mask // 2 + round(LLAMA_CPP_ATTENTION_ROWS * tokens * d * F32)
    else:
        kq = context * tokens * model.num_heads * F32
        attention = kq + mask + round(LLAMA_CPP_ATTENTION_ROWS * tokens * d * F32)
    ffn_width = max(model.ffn_size, model.moe_ffn_size * max(model.moe_active_experts, 1))
    ffn = 2 * tokens * ffn_width * F32 + 2 * tokens * d * F32
    # The logits of every micro-batch token (worst case) plus the normed input row.
    logits = tokens * model.vocab_size * F32 + tokens * d * F32 if holds_output else 0
    peak = max(attention, ffn, logits)
    if pipeline:
        peak += GGML_SCHED_MAX_COPIES * mask + LLAMA_CPP_PIPELINE_ROWS * tokens * d * F32
    return peak


def llama_cpp_host_buffer_bytes(model: Model, *, pipeline: bool, n_ubatch: int = LLAMA_CPP_N_UBATCH) -> int:
    copies = GGML_SCHED_MAX_COPIES - 1 if pipeline else 1
    return copies * LLAMA_CPP_HOST_INPUT_ROWS * n_ubatch * model.hidden_size * F32


# Live bf16 rows of n_embd in an HF forward beyond the FFN intermediates (residual, normed
# input, attention output, q/k/v); an estimate, not fitted (no public breakdown).
HF_ACTIVATION_ROWS = 6


def transformers_activation_bytes(model: Model, prompt_tokens: int, batch: int) -> int:
    """Peak activations of an HF forward over the prompt (SDPA, logits of the last token only)."""
    tokens = max(prompt_tokens, 1) * batch
    ffn = 2 * tokens * model.ffn_size * BF16
    return ffn + HF_ACTIVATION_ROWS * tokens * model.hidden_size * BF16 + batch * model.vocab_size * F32


# ExLlamaV2 processes prompts in chunks of max_input_len tokens (ExLlamaV2Config default 2048).
EXLLAMAV2_MAX_INPUT_LEN = 2048


# ---- fixed per-GPU overheads -------------------------------------------------------------

# llama.cpp's CUDA context with lazy module loading.  Bounded by measurement: 6× RTX 3090
# (24,576 MiB) ran Llama-3-70B F16 pp8192, whose largest device needs ≈24,490 MiB of
# buffers, so the context took under ≈90 MiB there (calibration llamacpp_multi_gpu.csv).
LLAMA_CPP_CUDA_CONTEXT_BYTES = 64 * MIB
# PyTorch engines: CUDA context + kernels outside the caching allocator; measured 621 MiB
# (nvidia-smi after torch init, H100, torch 2.11 / CUDA 13; perf-model.md §1.5 [M]) and
# ~0.75 GiB after loading a model.
TORCH_CUDA_CONTEXT_BYTES = 750 * MIB
# NCCL communicator buffers per rank when tensor parallel (NCCL_BUFFSIZE 4 MiB × channels ×
# peers, plus vLLM's custom all-reduce buffers); an estimate of ~256 MiB.
NCCL_BUFFER_BYTES = 256 * MIB
