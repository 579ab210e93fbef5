"""Memory model: what every GPU (and the host) must hold for one workload.

Pure functions of typed inputs.  ``estimate_memory`` returns one :class:`DeviceMemory` per
GPU with one field per term (weights, KV cache, activations, overhead) and whether it fits
the GPU's usable capacity under the engine's rules.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..catalog.records import GPU, Model
from ..engines import LLAMA_CPP, TRANSFORMERS, VLLM, Engine
from ..placement import DeviceShare, Placement
from ..quant import Quant, tensor_storage
from ..units import GIB, MIB
from . import buffers, serving
from .kv_cache import honors_window, kv_bytes, kv_bytes_per_token

# macOS lets the GPU wire only part of unified memory by default (Metal's
# recommendedMaxWorkingSetSize, tunable with `sysctl iogpu.wired_limit_mb`); llama.cpp logs
# it at start-up: 147,456 MiB of 196,608 MiB on a 192 GB M2 Ultra = 75 %.  Machines with
# 36 GB or less get about two thirds.
APPLE_WORKING_SET_FRACTION_LARGE = 0.75
APPLE_WORKING_SET_FRACTION_SMALL = 0.67
APPLE_SMALL_MEMORY_MIB = 36 * 1024
#: AMD APUs (Strix Halo): the driver dedicates at most 96 of 128 GB to graphics (AMD Variable
#: Graphics Memory, as reviewed on the Framework Desktop: verdict-reviews.com, 2026).
AMD_APU_GRAPHICS_FRACTION = 0.75


class WeightBytes(Protocol):
    """Real tensor bytes read from a model file (GGUF): per block and per non-block tensor."""

    @property
    def per_layer(self) -> Mapping[int, int]: ...

    @property
    def other(self) -> Mapping[str, int]: ...


@dataclass(frozen=True, slots=True)
class Workload:
    """What the model is asked to do: tokens of context per sequence and sequences at once."""

    context: int
    batch: int = 1
    prompt_tokens: int = 512
    kv_dtype: str = "f16"
    #: vLLM gpu_memory_utilization / SGLang mem_fraction_static / TensorRT-LLM
    #: free_gpu_memory_fraction when not the engine's default.
    memory_fraction: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceMemory:
    """Memory of one GPU, by term, against its capacity."""

    gpu: GPU
    capacity_bytes: int
    usable_bytes: int
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    overhead_bytes: int
    layers: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.activations_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.usable_bytes


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    devices: tuple[DeviceMemory, ...]
    weights_bytes: int
    host_bytes: int
    kv_pool_tokens: int | None
    max_concurrent_sequences: int | None
    kv_bytes_per_token: float
    placement: Placement
    sequences: int = 1
    host_limit_bytes: int | None = None  # the rig's host RAM, when stated

    @property
    def problems(self) -> tuple[str, ...]:
        """Why it does not fit, one line per reason (empty when it fits)."""
        out = [
            f"GPU {i} ({d.gpu.id}) needs {d.total_bytes / GIB:.1f} GiB of its {d.usable_bytes / GIB:.1f} GiB usable"
            for i, d in enumerate(self.devices)
            if not d.fits
        ]
        if self.max_concurrent_sequences is not None and self.max_concurrent_sequences < self.sequences:
            out.append(
                f"the KV pool holds {self.kv_pool_tokens:,} tokens: {self.max_concurrent_sequences} sequences "
                f"at once, fewer than the {self.sequences} asked for"
            )
        if self.host_limit_bytes is not None and self.host_bytes > self.host_limit_bytes:
            out.append(
                f"host RAM: needs {self.host_bytes / GIB:.1f} GiB of the {self.host_limit_bytes / GIB:.1f} GiB given"
            )
        return tuple(out)

    @property
    def fits(self) -> bool:
        if self.max_concurrent_sequences is not None and self.max_concurrent_sequences < self.sequences:
            # A vLLM-class KV pool that cannot hold the requested sequences at once (below one,
            # the engine refuses to start: "No available memory for the cache blocks").
            return False
        if self.host_limit_bytes is not None and self.host_bytes > self.host_limit_bytes:
            return False
        return all(d.fits for d in self.devices)


def usable_capacity(gpu: GPU, engine: Engine) -> int:
    """Memory the engine may use on ``gpu``: its share under the engine's rules."""
    capacity = gpu.memory_bytes
    if gpu.is_apple:
        small = gpu.memory_mib <= APPLE_SMALL_MEMORY_MIB
        share = APPLE_WORKING_SET_FRACTION_SMALL if small else APPLE_WORKING_SET_FRACTION_LARGE
        capacity = int(capacity * share)
    elif gpu.form_factor == "soc" and gpu.vendor == "amd":
        capacity = int(capacity * AMD_APU_GRAPHICS_FRACTION)
    if engine.family == VLLM:
        # The serving engines take their share of what CUDA reports; SGLang's default share
        # depends on the GPU (``serving.sglang_mem_fraction_static``).
        fraction = serving.sglang_mem_fraction_static(gpu, 1) if engine.id == "sglang" else engine.memory_utilization
        return int(serving.cuda_total_bytes(gpu) * (fraction or 1.0))
    if engine.memory_utilization is not None:
        capacity = int(capacity * engine.memory_utilization)
    return capacity


@functools.lru_cache(maxsize=512)
def _layer_weight_bytes(model: Model, quant: Quant) -> tuple[dict[int, int], dict[str, int]]:
    """Bytes per block and of the non-block tensors (token_embd, output, output_norm)."""
    ts, _, sizes = tensor_storage(model, quant)
    per_layer: dict[int, int] = {}
    other: dict[str, int] = {}
    for t, size in zip(ts, sizes, strict=True):
        if t.layer is None:
            other[t.name] = size
        else:
            per_layer[t.layer] = per_layer.get(t.layer, 0) + size
    return per_layer, other


def _output_bytes(model: Model, other: dict[str, int]) -> int:
    # Tied embeddings: the output head is the embedding matrix, which the GPU then needs.
    head = other.get("output", other["token_embd"] if model.tie_embeddings else 0)
    return head + other.get("output_norm", 0)


@dataclass(frozen=True, slots=True)
class _Weights:
    """Weight bytes of the model: per block, the embedding table and the output head."""

    per_layer: dict[int, int]
    token_embd: int
    output: int
    total: int


def _weights(model: Model, quant: Quant, file_weights: WeightBytes | None) -> _Weights:
    if file_weights is not None:
        per_layer, other = dict(file_weights.per_layer), dict(file_weights.other)
    else:
        per_layer, other = _layer_weight_bytes(model, quant)  # cached: callers must not mutate
    total = sum(per_layer.values()) + sum(other.values())
    return _Weights(per_layer, other["token_embd"], _output_bytes(model, other), total)


def _device_weights(model: Model, engine: Engine, share: DeviceShare, index: int, w: _Weights) -> int:
    weights = math.ceil(sum(w.per_layer[i] for i in share.layers) / share.shard)
    if share.holds_output:
        weights += math.ceil(w.output / share.shard)
    # PyTorch engines keep the embedding table on the first GPU (vLLM: the first pipeline
    # stage, vocabulary-parallel); a tied head on the same GPU is that same matrix.
    embedding_here = share.holds_embedding if engine.family == VLLM else engine.family == TRANSFORMERS and index == 0
    if embedding_here and not (model.tie_embeddings and share.holds_output):
        weights += math.ceil(w.token_embd / share.shard)
    return weights


def _serving_device(
    model: Model, engine: Engine, placement: Placement, share: DeviceShare, weights: int, workload: Workload
) -> tuple[DeviceMemory, int]:
    """A vLLM-class rank: the engine's start-up accounting, and the KV tokens its pool holds."""
    rank = serving.ServingShare(share.gpu, weights, len(share.layers), placement.tensor_parallel, share.holds_output)
    fraction = workload.memory_fraction
    if fraction is None and engine.id != "sglang":  # SGLang's default depends on the GPU
        fraction = engine.memory_utilization
    start = serving.startup_memory(engine.id, model, rank, fraction)
    kv_layers = share.layers if share.holds_kv else ()
    per_token = kv_bytes_per_token(model, kv_layers, workload.kv_dtype, shard=share.shard)
    tokens = serving.pool_tokens(start.kv_cache_bytes, per_token)
    device = DeviceMemory(
        share.gpu,
        share.gpu.memory_bytes,
        start.budget_bytes,
        weights,
        start.kv_cache_bytes,  # the engine hands every remaining byte of its budget to the KV pool
        start.activation_bytes,
        start.non_torch_bytes,
        share.layers,
    )
    return device, tokens


def _local_device(
    model: Model, engine: Engine, placement: Placement, share: DeviceShare, weights: int, workload: Workload
) -> DeviceMemory:
    """A llama.cpp / Transformers / ExLlamaV2 GPU: a KV cache sized for the workload."""
    gpu, seqs, n_gpus = share.gpu, workload.batch, len(placement.devices)
    kv_layers = share.layers if share.holds_kv else ()
    if engine.family == LLAMA_CPP and placement.split == "row" and share.holds_kv:
        kv_layers = tuple(i for i in range(model.num_layers) if i not in placement.host_layers)
    kv_shard = share.shard if placement.split != "row" else 1
    window = honors_window(model, engine.family)
    kv = kv_bytes(model, kv_layers, workload.context, workload.kv_dtype, shard=kv_shard, honor_window=window) * seqs
    if engine.family == LLAMA_CPP:
        compute_here = share.is_main or placement.split != "row"
        tokens = workload.context * seqs if seqs > 1 else workload.context
        pipeline = n_gpus > 1 and placement.split == "layer" and not placement.host_layers
        activations = (
            buffers.llama_cpp_compute_bytes(model, tokens, holds_output=share.holds_output, pipeline=pipeline)
            if compute_here
            else 0
        )
        overhead = 0 if gpu.is_apple else buffers.LLAMA_CPP_CUDA_CONTEXT_BYTES
    elif engine.family == TRANSFORMERS:
        activations = buffers.transformers_activation_bytes(model, workload.prompt_tokens, seqs)
        overhead = buffers.TORCH_CUDA_CONTEXT_BYTES
    else:  # exllamav2: fixed-size cache plus a scratch buffer per GPU
        chunk = min(workload.prompt_tokens, buffers.EXLLAMAV2_MAX_INPUT_LEN)
        activations = buffers.transformers_activation_bytes(model, chunk, 1)
        overhead = buffers.TORCH_CUDA_CONTEXT_BYTES
    usable = usable_capacity(gpu, engine)
    return DeviceMemory(gpu, gpu.memory_bytes, usable, weights, kv, activations, overhead, share.layers)


def _host_bytes(model: Model, engine: Engine, placement: Placement, workload: Workload, w: _Weights) -> int:
    if engine.family == VLLM:
        return 0
    # llama.cpp and ExLlamaV2 keep the token-embedding table in host RAM (llama.cpp logs a
    # "CPU buffer" of exactly token_embd even with every layer offloaded).
    host = w.token_embd if engine.family != TRANSFORMERS else 0
    host += sum(w.per_layer[i] for i in placement.host_layers)
    host += kv_bytes(model, placement.host_layers, workload.context, workload.kv_dtype) * workload.batch
    if placement.output_on_host:
        host += w.output
    if engine.family == LLAMA_CPP:
        pipeline = len(placement.devices) > 1 and placement.split == "layer"
        host += buffers.llama_cpp_host_buffer_bytes(model, pipeline=pipeline)
    return host


def estimate_memory(
    model: Model,
    quant: Quant,
    engine: Engine,
    placement: Placement,
    workload: Workload,
    *,
    file_weights: WeightBytes | None = None,
    host_limit_bytes: int | None = None,
) -> MemoryEstimate:
    """Per-GPU and host memory for ``model`` placed by ``placement`` running ``workload``.

    vLLM-class engines (vLLM, SGLang, TensorRT-LLM) size their KV pool as they do at start-up
    (:mod:`rigplan.memory.serving`); the others hold a cache for ``workload``.

    Args:
        workload: context per sequence, sequences at once, prompt length, KV dtype.
        file_weights: the real tensor sizes of a model file, used instead of the quant formula.
        host_limit_bytes: host RAM of the rig; more kept on the host does not fit.

    Returns:
        A :class:`MemoryEstimate`; ``fits`` is False when any GPU exceeds its usable memory
        (or, for vLLM-class engines, when the KV pool cannot hold the sequences asked for).
    """
    w = _weights(model, quant, file_weights)
    devices: list[DeviceMemory] = []
    pool_tokens: list[int] = []
    for index, share in enumerate(placement.devices):
        weights = _device_weights(model, engine, share, index, w)
        if engine.family == VLLM:
            device, tokens = _serving_device(model, engine, placement, share, weights, workload)
            pool_tokens.append(tokens)
        else:
            device = _local_device(model, engine, placement, share, weights, workload)
        devices.append(device)
    kv_pool = min(pool_tokens) if pool_tokens else None  # the engine takes the smallest rank's pool
    return MemoryEstimate(
        devices=tuple(devices),
        weights_bytes=w.total,
        host_bytes=_host_bytes(model, engine, placement, workload, w),
        kv_pool_tokens=kv_pool,
        max_concurrent_sequences=kv_pool // workload.context if kv_pool is not None else None,
        kv_bytes_per_token=kv_bytes_per_token(model, range(model.num_layers), workload.kv_dtype),
        placement=placement,
        sequences=workload.batch,
        host_limit_bytes=host_limit_bytes,
    )


__all__ = ["MIB", "DeviceMemory", "DeviceShare", "MemoryEstimate", "Workload", "estimate_memory", "usable_capacity"]
