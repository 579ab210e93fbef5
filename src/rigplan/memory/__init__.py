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

from .. import arch
from ..catalog.records import GPU, Model
from ..engines import LLAMA_CPP, TRANSFORMERS, VLLM, Engine
from ..placement import DeviceShare, Placement
from ..quant import Quant, tensor_bytes
from ..units import GIB, MIB
from . import buffers
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
    if engine.memory_utilization is not None:
        capacity = int(capacity * engine.memory_utilization)
    return capacity


@functools.lru_cache(maxsize=512)
def _layer_weight_bytes(model: Model, quant: Quant) -> tuple[dict[int, int], dict[str, int]]:
    """Bytes per block and of the non-block tensors (token_embd, output, output_norm)."""
    ts = arch.tensors(model)
    sizes = tensor_bytes(ts, quant, model)
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

    Args:
        workload: context per sequence, sequences at once, prompt length, KV dtype.
        file_weights: the real tensor sizes of a model file, used instead of the quant formula.
        host_limit_bytes: host RAM of the rig; more kept on the host does not fit.

    Returns:
        A :class:`MemoryEstimate`; ``fits`` is False when any GPU exceeds its usable memory
        (or, for vLLM-class engines, when the KV pool cannot hold one sequence).
    """
    if file_weights is not None:
        per_layer, other = dict(file_weights.per_layer), dict(file_weights.other)
    else:
        per_layer, other = _layer_weight_bytes(model, quant)  # cached: callers must not mutate
    weights_total = sum(per_layer.values()) + sum(other.values())
    token_embd = other["token_embd"]
    output = _output_bytes(model, other)
    seqs = workload.batch
    n_gpus = len(placement.devices)
    devices: list[DeviceMemory] = []
    pool_tokens: list[int] = []
    kv_per_token_total = kv_bytes_per_token(model, range(model.num_layers), workload.kv_dtype)

    for index, share in enumerate(placement.devices):
        gpu = share.gpu
        usable = usable_capacity(gpu, engine)
        weights = math.ceil(sum(per_layer[i] for i in share.layers) / share.shard)
        if share.holds_output:
            weights += math.ceil(output / share.shard)
        # PyTorch engines keep the embedding table on the first GPU (vLLM: the first pipeline
        # stage, vocabulary-parallel); a tied head on the same GPU is that same matrix.
        embedding_here = (
            share.holds_embedding if engine.family == VLLM else engine.family == TRANSFORMERS and index == 0
        )
        if embedding_here and not (model.tie_embeddings and share.holds_output):
            weights += math.ceil(token_embd / share.shard)
        kv_layers = share.layers if share.holds_kv else ()
        if engine.family == LLAMA_CPP and placement.split == "row" and share.holds_kv:
            kv_layers = tuple(i for i in range(model.num_layers) if i not in placement.host_layers)
        kv_shard = share.shard if placement.split != "row" else 1
        if engine.family == VLLM:
            activations = buffers.vllm_activation_bytes(
                model, share.shard, holds_output=share.holds_output, gpu_memory_bytes=gpu.memory_bytes
            )
            overhead = buffers.TORCH_CUDA_CONTEXT_BYTES + buffers.VLLM_CUDA_GRAPH_BYTES
            if placement.tensor_parallel > 1 or placement.pipeline_parallel > 1:
                overhead += buffers.NCCL_BUFFER_BYTES
            free = usable - weights - activations - overhead
            per_token = kv_bytes_per_token(model, kv_layers, workload.kv_dtype, shard=kv_shard)
            tokens = int(free // per_token) if per_token and free > 0 else 0
            pool_tokens.append(tokens)
            kv = max(free, 0)  # the engine hands every remaining byte to the KV pool
        else:
            window = honors_window(model, engine.family)
            kv = (
                kv_bytes(model, kv_layers, workload.context, workload.kv_dtype, shard=kv_shard, honor_window=window)
                * seqs
            )
            if engine.family == LLAMA_CPP:
                compute_here = share.is_main or placement.split != "row"
                activations = (
                    buffers.llama_cpp_compute_bytes(
                        model,
                        workload.context * seqs if seqs > 1 else workload.context,
                        holds_output=share.holds_output,
                        pipeline=n_gpus > 1 and placement.split == "layer" and not placement.host_layers,
                    )
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
        devices.append(DeviceMemory(gpu, gpu.memory_bytes, usable, weights, kv, activations, overhead, share.layers))

    host = 0
    if engine.family != VLLM:
        # llama.cpp and ExLlamaV2 keep the token-embedding table in host RAM (llama.cpp logs a
        # "CPU buffer" of exactly token_embd even with every layer offloaded).
        host += token_embd if engine.family != TRANSFORMERS else 0
        host += sum(per_layer[i] for i in placement.host_layers)
        host += kv_bytes(model, placement.host_layers, workload.context, workload.kv_dtype) * seqs
        if placement.output_on_host:
            host += output
        if engine.family == LLAMA_CPP:
            host += buffers.llama_cpp_host_buffer_bytes(model, pipeline=n_gpus > 1 and placement.split == "layer")
    kv_pool = min(pool_tokens) if pool_tokens else None
    concurrent = kv_pool // workload.context if kv_pool is not None else None
    return MemoryEstimate(
        devices=tuple(devices),
        weights_bytes=weights_total,
        host_bytes=host,
        kv_pool_tokens=kv_pool,
        max_concurrent_sequences=concurrent,
        kv_bytes_per_token=kv_per_token_total,
        placement=placement,
        sequences=seqs,
        host_limit_bytes=host_limit_bytes,
    )


__all__ = ["MIB", "DeviceMemory", "DeviceShare", "MemoryEstimate", "Workload", "estimate_memory", "usable_capacity"]
