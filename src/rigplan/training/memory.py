"""Training memory per GPU: model states, activations, logits and runtime overheads.

Model states follow the ZeRO paper's accounting (Rajbhandari et al. 2019, arXiv:1910.02054
§3.1): mixed-precision Adam keeps 2Ψ bytes of 16-bit weights, 2Ψ of 16-bit gradients and KΨ of
optimizer states with K = 12 (fp32 master weights, momentum, variance) — 16Ψ in all.  ZeRO-1/2/3
shard the optimizer states, then the gradients, then the weights over the N_d data-parallel
ranks (paper §5; FSDP's SHARD_GRAD_OP and FULL_SHARD are ZeRO-2 and ZeRO-3).

Activations follow Korthikanti et al. 2022 (arXiv:2205.05198 §4, Table 2): per layer and per
token, 34·h bytes plus 5·a·s bytes of attention scores for GPT-3 with dropout.  The terms are
written out here so that GQA, gated FFNs of any width and models without dropout are counted
as they are (a GPT-3-shaped model with dropout gives back 34·h + 5·a·s; see the tests).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from ..catalog.records import GPU
from ..engines import get_engine
from ..memory import usable_capacity
from ..memory.buffers import NCCL_BUFFER_BYTES, TORCH_CUDA_CONTEXT_BYTES
from .setup import Checkpointing, Layout, Method, Optimizer, Precision, TrainingSetup, stage_layers
from .shape import SIXTEEN_BIT_BYTES, ModelShape, lora_linears, lora_parameters

# ---- bytes per parameter (ZeRO paper §3.1; Transformer Math 101 "Model Parameters",
# "Optimizer States", "Gradients" — perf-model.md §2.1 [S:ZERO, S:TM101]) ----------------------

# Working copy of the weights and of the gradients, by training precision.  fp8 training
# (Transformer Engine) keeps bf16 weights and casts them per layer, so it stores as bf16.
# FP8 / FP4 training keeps bf16 weights and gradients; the low-bit copies are per-step temporaries
# (Transformer Engine; NVIDIA "Using FP8 with Transformer Engine", Megatron-Core fp8 recipes).
WEIGHT_BYTES = {
    Precision.BF16: 2,
    Precision.F16: 2,
    Precision.FP8: 2,
    Precision.MXFP8: 2,
    Precision.FP4: 2,
    Precision.F32: 4,
}
GRADIENT_BYTES = WEIGHT_BYTES
# Mixed precision keeps an fp32 master copy of every trained weight (the "4" of K = 12 in ZeRO);
# pure f32 training updates the weights in place.
MASTER_WEIGHT_BYTES = {
    Precision.BF16: 4,
    Precision.F16: 4,
    Precision.FP8: 4,
    Precision.MXFP8: 4,
    Precision.FP4: 4,
    Precision.F32: 0,
}
# Optimizer states proper: AdamW momentum + variance in fp32 (4 + 4); bitsandbytes 8-bit AdamW
# 1 + 1 (TM101: "8-bit optimizers … 2 bytes per param" + the fp32 copy); SGD momentum 4.
OPTIMIZER_STATE_BYTES = {Optimizer.ADAMW: 8, Optimizer.ADAMW_8BIT: 2, Optimizer.SGD: 4}
# bitsandbytes block-wise quantisation keeps one fp32 absmax per block of 2048 values for each
# of the two states (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization", §2).
BNB_OPTIMIZER_BLOCK = 2048
FLOAT32_BYTES = 4

# ---- ZeRO-3 / FSDP working set -------------------------------------------------------------
# FSDP gathers one wrapped block at a time and prefetches the next (forward_prefetch /
# BackwardPrefetch.BACKWARD_PRE), so two blocks are unsharded at once, with their unsharded
# gradients before the reduce-scatter.  DeepSpeed's stage3_prefetch_bucket_size and
# max_live_parameters bound the same quantity (TM101 "live parameters").
ZERO3_LIVE_BLOCKS = 2
# DeepSpeed reduce_bucket_size default (5e8 elements): gradients staged on the GPU before
# they are copied to the host under ZeRO-Offload.
OFFLOAD_REDUCE_BUCKET_ELEMENTS = 500_000_000

# ---- activations (Korthikanti et al. 2022 §4.1; perf-model.md §2.3 [S:KOR22]) ---------------
# Elements kept per token per layer outside the TP-sharded regions: the inputs of the two
# norms (2h), of the QKV projection (h) and of the first MLP linear (h) — the "10" of
# sbh(10 + 24/t) less the two dropout masks.
REPLICATED_ACTIVATION_ROWS = 4
# GPT-3-style dropout (Korthikanti's accounting): a 1-byte mask after attention and after the
# MLP (h each), and on the attention probabilities a mask plus the dropped copy (a·s·(1 + 2)).
# Llama, Mistral, Qwen and Gemma train without dropout; kept for the paper cross-check.
DROPOUT_MASK_BYTES = 1
# Softmax output kept for the attention backward without flash attention: a·s elements per token.
# FlashAttention keeps only the fp32 log-sum-exp per head (Dao et al. 2022, Alg. 2 output L).
FLASH_LSE_BYTES = 4
# Training logits: b·s·V at 4 bytes, ×2 for the softmax (vram.asmirnov.xyz, perf-model.md
# §1.4 [S:VRAM-ASM]): the fp32 upcast of the logits and their gradient.
LOGITS_BYTES_PER_ELEMENT = 8

# ---- fixed overheads -----------------------------------------------------------------------
# CUDA context + kernels outside PyTorch's allocator, measured 0.6–0.75 GiB (memory/buffers.py,
# perf-model.md §1.5 [M]); NCCL communicator buffers when there is more than one GPU.
CUDA_CONTEXT_BYTES = TORCH_CUDA_CONTEXT_BYTES
DISTRIBUTED_BUFFER_BYTES = NCCL_BUFFER_BYTES
# PyTorch's caching allocator cannot use every byte: tensors of changing sizes fragment its
# blocks (the reason for PYTORCH_CUDA_ALLOC_CONF=expandable_segments).  Keep 5% of the GPU free
# as a margin [D, estimate]; a plan that needs the last few percent is an OOM risk.
ALLOCATOR_RESERVE_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class GPUMemory:
    """Memory of one GPU (every GPU of a pipeline stage holds the same)."""

    stage: int
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    gathered_params_bytes: int  # ZeRO-3 / FSDP blocks unsharded at once
    activations_bytes: int  # stored activations + backward working set + temporary buffers
    logits_bytes: int
    overhead_bytes: int
    capacity_bytes: int
    paged_to_host_bytes: int = 0  # paged-optimizer states evicted to host RAM to fit

    @property
    def total_bytes(self) -> int:
        return (
            self.weights_bytes
            + self.gradients_bytes
            + self.optimizer_bytes
            + self.gathered_params_bytes
            + self.activations_bytes
            + self.logits_bytes
            + self.overhead_bytes
            - self.paged_to_host_bytes
        )

    @property
    def usable_bytes(self) -> int:
        return int(self.capacity_bytes * (1 - ALLOCATOR_RESERVE_FRACTION))

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.usable_bytes


@dataclass(frozen=True, slots=True)
class TrainingMemory:
    stages: tuple[GPUMemory, ...]  # one per pipeline stage
    host_bytes: int  # offloaded states (CPU offload) and paged optimizer spill, per node
    trainable_params: int
    frozen_params: int

    @property
    def fits(self) -> bool:
        return all(s.fits for s in self.stages)

    @property
    def peak(self) -> GPUMemory:
        return max(self.stages, key=lambda s: s.total_bytes)


def optimizer_bytes_per_param(precision: Precision, optimizer: Optimizer) -> float:
    """Master weights + optimizer states per trained parameter (K of the ZeRO paper).

    >>> optimizer_bytes_per_param(Precision.BF16, Optimizer.ADAMW)
    12
    """
    states: float = OPTIMIZER_STATE_BYTES[optimizer]
    if optimizer is Optimizer.ADAMW_8BIT:
        states += 2 * FLOAT32_BYTES / BNB_OPTIMIZER_BLOCK
    return MASTER_WEIGHT_BYTES[precision] + states


def activation_bytes_per_token_layer(
    shape: ModelShape, setup: TrainingSetup, tp: int, *, dropout: bool = False
) -> tuple[float, float]:
    """(kept without recompute, kept with selective recompute) bytes per token per layer on one
    TP rank: Korthikanti et al. Table 2 with the terms written out."""
    act = FLOAT32_BYTES if setup.precision is Precision.F32 else 2
    h = shape.hidden_size
    replicated = REPLICATED_ACTIVATION_ROWS * h * act
    ffn = shape.ffn_activation_width
    # Q, K, V for the attention backward; the input of the output projection; the FFN inputs of
    # the activation function and of the down projection (gated: gate, up, act(gate), product).
    mlp_rows = 4 * ffn if shape.ffn_gated else 2 * ffn
    sharded = (2 * shape.q_width + 2 * shape.kv_width + mlp_rows) * act
    if dropout:
        replicated += 2 * h * DROPOUT_MASK_BYTES
    scores = shape.num_heads * setup.seq_len * (act + (DROPOUT_MASK_BYTES + act if dropout else 0))
    if setup.flash_attention:
        scores = shape.num_heads * FLASH_LSE_BYTES
    shard_all = setup.sequence_parallel and tp > 1
    rep = replicated / tp if shard_all else replicated
    full = rep + (sharded + scores) / tp
    selective = rep + sharded / tp + (shape.num_heads * FLASH_LSE_BYTES / tp if setup.flash_attention else 0)
    return full, selective


def _lora_activation_bytes_per_token_layer(shape: ModelShape, setup: TrainingSetup, tp: int) -> float:
    if setup.method.trains_base:
        return 0.0

    act = FLOAT32_BYTES if setup.precision is Precision.F32 else 2
    # Each adapter keeps its r-wide intermediate (x·A) for the gradient of B.
    return sum(lin.copies * setup.lora_rank for lin in lora_linears(shape, setup.lora_targets)) * act / tp


@functools.lru_cache(maxsize=4096)
def stage_params(shape: ModelShape, stage: int, pp: int) -> float:
    """Parameters pipeline stage ``stage`` holds (first: embedding; last: final norm + head;
    a tied head on its own last stage keeps a copy of the embedding, as Megatron does).
    Stages hold :func:`stage_layers` blocks (uneven when PP does not divide the layers)."""
    params = shape.block_params * stage_layers(shape.num_layers, pp)[stage] / shape.num_layers
    if stage == 0:
        params += shape.embedding_params
    if stage == pp - 1:
        params += shape.final_norm_params + shape.output_params
        if shape.tie_embeddings and pp > 1:
            params += shape.embedding_params
    return params


@functools.lru_cache(maxsize=4096)
def gpu_params(shape: ModelShape, stage: int, layout: Layout) -> float:
    """Parameters one GPU of pipeline stage ``stage`` holds before ZeRO sharding: dense weights
    ÷ TP; routed experts ÷ EP when expert parallel (expert tensor parallelism 1, as the
    Megatron-Bridge MoE recipes set it), else ÷ TP like the rest."""
    pp, tp, ep = layout.pipeline_parallel, layout.tensor_parallel, layout.expert_parallel
    params = stage_params(shape, stage, pp)
    experts = shape.expert_params * stage_layers(shape.num_layers, pp)[stage] / shape.num_layers
    if ep > 1:
        return (params - experts) / tp + experts / ep
    return params / tp


def _base_bytes(shape: ModelShape, setup: TrainingSetup, stage: int, pp: int) -> float:
    """Frozen base weights of a LoRA / QLoRA stage (before TP and ZeRO-3 sharding)."""
    if setup.method is Method.QLORA:
        linear = shape.nf4_linear_bytes / pp
        other_params = stage_params(shape, stage, pp) - shape.block_linear_params / pp
        return linear + other_params * SIXTEEN_BIT_BYTES  # bitsandbytes keeps embeddings, head, norms 16-bit
    return stage_params(shape, stage, pp) * WEIGHT_BYTES[setup.precision]


def in_flight_microbatches(stage: int, pp: int, microbatches: int) -> int:
    """Micro-batches whose activations a stage holds under 1F1B: pp − stage, at most all of them
    (Narayanan et al. 2021 §2.2.1; Korthikanti et al. §4.2.3: the first stage holds p)."""
    return max(1, min(pp - stage, microbatches))


def _shard(setup: TrainingSetup, layout: Layout) -> int:
    """Ranks optimizer states / gradients / weights are sharded over: Megatron's distributed
    optimizer and FSDP shard over the data- and context-parallel ranks (hybrid: within a node)."""
    if setup.hybrid_shard:
        mp = min(layout.gpus_per_node, layout.model_parallel)
        return max(1, min(layout.data_parallel, layout.gpus_per_node // mp))
    return layout.data_parallel * layout.context_parallel


def _stage_states(
    shape: ModelShape, setup: TrainingSetup, layout: Layout, s: int, shard: int
) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer states, gathered parameters) bytes of stage ``s`` on GPU."""
    tp, pp = layout.tensor_parallel, layout.pipeline_parallel
    z = setup.zero_stage if shard > 1 else 0
    w_b, g_b = WEIGHT_BYTES[setup.precision], GRADIENT_BYTES[setup.precision]
    params = gpu_params(shape, s, layout)
    if setup.method.trains_base:
        trained = params
        weights = params * w_b
        block_bytes_per_param: float = w_b + g_b  # gathered weights and their gradients
    else:
        lora = lora_parameters(shape, setup.lora_rank, setup.lora_targets)
        trained = lora * stage_layers(shape.num_layers, pp)[s] / shape.num_layers / tp
        base = _base_bytes(shape, setup, s, pp) / tp
        weights = base + trained * w_b
        block_bytes_per_param = base / max(params, 1.0)  # frozen: no gradient to gather
    grads = trained * g_b / (shard if z >= 2 else 1)
    optim = trained * optimizer_bytes_per_param(setup.precision, setup.optimizer) / (shard if z >= 1 else 1)
    gathered = 0.0
    if z >= 3:
        weights /= shard
        gathered = ZERO3_LIVE_BLOCKS * shape.layer_params / tp * block_bytes_per_param
    return weights, grads, optim, gathered


def _offloaded(
    setup: TrainingSetup, z: int, weights: float, grads: float, optim: float
) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer states) left on the GPU under CPU offload, and the bytes
    moved to host RAM (ZeRO-Offload: optimizer states; ZeRO-2+ gradients past one reduce bucket;
    ZeRO-3 weights)."""
    if setup.offload != "cpu":
        return weights, grads, optim, 0.0
    g_b = GRADIENT_BYTES[setup.precision]
    host = optim
    if z >= 2:
        kept = min(grads, OFFLOAD_REDUCE_BUCKET_ELEMENTS * g_b)
        host += grads - kept
        grads = kept
    if z >= 3:
        host += weights
        weights = 0.0
    return weights, grads, 0.0, host


def _activation_bytes(shape: ModelShape, setup: TrainingSetup, layout: Layout, s: int) -> tuple[float, float]:
    """(activations incl. QLoRA's dequantised linear, logits) bytes of stage ``s`` on one GPU."""
    tp, pp = layout.tensor_parallel, layout.pipeline_parallel
    full_act, selective_act = activation_bytes_per_token_layer(shape, setup, tp)
    lora_act = _lora_activation_bytes_per_token_layer(shape, setup, tp)
    act_b = FLOAT32_BYTES if setup.precision is Precision.F32 else 2
    layer_input = shape.hidden_size * act_b / (tp if setup.sequence_parallel and tp > 1 else 1)
    per_layer_token = {
        Checkpointing.NONE: full_act + lora_act,
        Checkpointing.SELECTIVE: selective_act + lora_act,
        Checkpointing.FULL: layer_input,
    }[setup.checkpointing]
    tokens = setup.micro_batch_tokens / layout.context_parallel  # CP splits every sequence
    layers = stage_layers(shape.num_layers, pp)[s]
    stored = layers * tokens * per_layer_token * in_flight_microbatches(s, pp, setup.grad_accumulation)
    working = tokens * (full_act + lora_act)  # one block's activations live in its backward
    temporary = 0.0
    if setup.method is Method.QLORA:
        # bitsandbytes dequantises a whole linear to 16-bit before the matmul.
        temporary = shape.largest_linear_params / tp * SIXTEEN_BIT_BYTES
    logits = tokens * shape.vocab_size / tp * LOGITS_BYTES_PER_ELEMENT if s == pp - 1 else 0.0
    return stored + working + temporary, logits


def estimate_training_memory(shape: ModelShape, setup: TrainingSetup, layout: Layout, gpu: GPU) -> TrainingMemory:
    """Memory of the GPUs of each pipeline stage for one training configuration (pure)."""
    pp = layout.pipeline_parallel
    shard = _shard(setup, layout)
    z = setup.zero_stage if shard > 1 else 0
    lora = 0 if setup.method.trains_base else lora_parameters(shape, setup.lora_rank, setup.lora_targets)
    capacity = usable_capacity(gpu, get_engine("transformers"))  # Apple: the GPU's working-set share
    overhead = CUDA_CONTEXT_BYTES + (DISTRIBUTED_BUFFER_BYTES if layout.gpus > 1 else 0)
    host = 0.0
    stages = []
    for s in range(pp):
        weights, grads, optim, gathered = _stage_states(shape, setup, layout, s, shard)
        weights, grads, optim, host_s = _offloaded(setup, z, weights, grads, optim)
        activations, logits = _activation_bytes(shape, setup, layout, s)
        host += host_s
        mem = GPUMemory(
            stage=s,
            weights_bytes=round(weights),
            gradients_bytes=round(grads),
            optimizer_bytes=round(optim),
            gathered_params_bytes=round(gathered),
            activations_bytes=round(activations),
            logits_bytes=round(logits),
            overhead_bytes=overhead,
            capacity_bytes=capacity,
        )
        if setup.paged_optimizer and not mem.fits:
            # Paged optimizers live in CUDA unified memory: under pressure their pages move to
            # host RAM (Dettmers et al. 2023 §3 "Paged Optimizers").
            spill = min(mem.optimizer_bytes, mem.total_bytes - mem.usable_bytes)
            mem = GPUMemory(**{**_fields(mem), "paged_to_host_bytes": spill})
            host += spill
        stages.append(mem)
    gpus_per_stage_per_node = max(1, min(layout.gpus, layout.gpus_per_node))
    return TrainingMemory(
        stages=tuple(stages),
        host_bytes=round(host / pp * gpus_per_stage_per_node) if host else 0,
        trainable_params=shape.total_params if setup.method.trains_base else lora,
        frozen_params=0 if setup.method.trains_base else shape.total_params,
    )


def _fields(mem: GPUMemory) -> dict[str, int]:
    return {f.name: getattr(mem, f.name) for f in dataclasses.fields(mem)}
