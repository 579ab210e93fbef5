"""MoE experts in host RAM (llama.cpp ``-ncmoe N`` / ``--override-tensor exps=CPU``): attention,
router, shared experts, norms, the output head and the KV cache stay on the GPUs; only the
routed experts of N layers live in RAM, and the CPU multiplies the few a token picks there.

rigplan's placement offloads whole layers, so its speed model reads attention weights of the
offloaded layers from RAM too.  This module compares the two layouts with the same GPU memory
(bandwidth bound, batch 1) and scales the whole-layer estimate by the ratio of their step times:
the speed model's calibration (kernel efficiencies, overheads) is kept, the layout is changed.

>>> round(step_time_s(gpu_bytes=2e9, host_bytes=1e9, gpu_bytes_per_s=1e12, host_bytes_per_s=1e11), 4)
0.0179
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .catalog.records import GPU, Model
from .quant import Quant
from .results import Estimate
from .speed.decode import HOST_MEMORY_EFFICIENCY
from .speed.work import experts_active_fraction, model_weights
from .units import format_gib

#: Share of a GPU's memory bandwidth a batch-1 decode reaches reading weights (an assumption in
#: the middle of the speed profiles' fitted efficiencies for llama.cpp on CUDA, 0.7-0.85); it
#: cancels to first order in the ratio of two layouts on the same GPUs.
GPU_STREAM_EFFICIENCY = 0.8


def step_time_s(*, gpu_bytes: float, host_bytes: float, gpu_bytes_per_s: float, host_bytes_per_s: float) -> float:
    """Seconds one decode step spends reading ``gpu_bytes`` from the GPUs and ``host_bytes``
    from RAM, one after the other (llama.cpp runs the layers in order)."""
    return gpu_bytes / (gpu_bytes_per_s * GPU_STREAM_EFFICIENCY) + host_bytes / (
        host_bytes_per_s * HOST_MEMORY_EFFICIENCY
    )


@dataclass(frozen=True, slots=True)
class ExpertLayout:
    """Where an ``-ncmoe`` layout puts a MoE model, and the bytes one decode step reads."""

    layers: int
    cpu_moe_layers: int  # llama.cpp -ncmoe N: the routed experts of this many layers in RAM
    gpu_step_bytes: float
    host_step_bytes: float
    host_resident_bytes: float

    @property
    def flag(self) -> str:
        return f"-ngl 99 -ncmoe {self.cpu_moe_layers}"


def expert_layout(model: Model, quant: Quant, gpu_weight_bytes: float) -> ExpertLayout | None:
    """The ``-ncmoe`` layout holding at most ``gpu_weight_bytes`` of weights on the GPUs: every
    non-expert weight there, then whole layers' experts from the first layer; None for a dense
    model or when the non-expert weights alone do not fit."""
    if not model.is_moe:
        return None
    mw = model_weights(model, quant)
    fraction = experts_active_fraction(model)
    dense = sum(layer.dense.nbytes for layer in mw.layers) + mw.output.nbytes
    room = gpu_weight_bytes - dense
    if room < 0:
        return None
    on_gpu = 0
    for layer in mw.layers:
        if layer.experts.nbytes > room:
            break
        room -= layer.experts.nbytes
        on_gpu += 1
    gpu_experts = sum(layer.experts.nbytes for layer in mw.layers[:on_gpu])
    host_experts = sum(layer.experts.nbytes for layer in mw.layers[on_gpu:])
    return ExpertLayout(
        layers=len(mw.layers),
        cpu_moe_layers=len(mw.layers) - on_gpu,
        gpu_step_bytes=dense + fraction * gpu_experts,
        host_step_bytes=fraction * host_experts,
        host_resident_bytes=host_experts,
    )


def whole_layer_step_bytes(model: Model, quant: Quant, gpu_weight_bytes: float) -> tuple[float, float]:
    """(GPU, host) bytes one decode step reads when whole layers fill the GPUs in order up to
    ``gpu_weight_bytes`` (the output head on the GPU) and the rest run from RAM."""
    mw = model_weights(model, quant)
    fraction = experts_active_fraction(model)
    room = gpu_weight_bytes - mw.output.nbytes
    gpu, host = mw.output.nbytes, 0.0
    for layer in mw.layers:
        size = layer.dense.nbytes + layer.experts.nbytes
        step = layer.dense.nbytes + fraction * layer.experts.nbytes
        if size <= room:
            room -= size
            gpu += step
        else:
            room = -1.0  # layers are offloaded from the first one that does not fit onwards
            host += step
    return gpu, host


def expert_offload_speedup(
    model: Model, quant: Quant, gpus: Sequence[GPU], gpu_weight_bytes: float, host_bytes_per_s: float
) -> tuple[float, ExpertLayout] | None:
    """Whole-layer step time / ``-ncmoe`` step time on the same GPUs and RAM (≥ 1 when experts
    in RAM help), with the layout; None when there is no such layout."""
    layout = expert_layout(model, quant, gpu_weight_bytes)
    if layout is None or not gpus or host_bytes_per_s <= 0:
        return None
    gpu_bw = min(g.bandwidth_gb_per_s for g in gpus) * 1e9  # layers run one GPU at a time
    gpu_w, host_w = whole_layer_step_bytes(model, quant, gpu_weight_bytes)
    whole = step_time_s(gpu_bytes=gpu_w, host_bytes=host_w, gpu_bytes_per_s=gpu_bw, host_bytes_per_s=host_bytes_per_s)
    experts = step_time_s(
        gpu_bytes=layout.gpu_step_bytes,
        host_bytes=layout.host_step_bytes,
        gpu_bytes_per_s=gpu_bw,
        host_bytes_per_s=host_bytes_per_s,
    )
    return whole / experts, layout


def with_experts_in_ram(est: Estimate, host_memory_bandwidth_gb_per_s: float) -> Estimate:
    """``est`` (a llama.cpp partial offload of whole layers) re-estimated for the ``-ncmoe``
    layout of a MoE model: decode speed and its range scaled by :func:`expert_offload_speedup`,
    the flag and the assumption in a warning.  Dense models and full-GPU estimates come back
    unchanged."""
    host = est.memory.host_bytes
    speed = est.speed
    if not host or speed.decode_tokens_per_s is None or not est.model.is_moe:
        return est
    gpu_weights = max(est.memory.weights_bytes - host, 0.0)
    found = expert_offload_speedup(
        est.model, est.quant, est.rig.gpus, gpu_weights, host_memory_bandwidth_gb_per_s * 1e9
    )
    if found is None or found[0] <= 1.0:
        return est
    factor, layout = found
    low_high = speed.decode_tokens_per_s_range
    note = (
        f"MoE experts in RAM ({layout.flag}: experts of {layout.cpu_moe_layers} of {layout.layers} layers on "
        f"the CPU, attention and KV cache on the GPU): decode ×{factor:.2f} over the whole-layer offload "
        "estimate (bandwidth ratio of the two layouts)"
    )
    new_speed = dataclasses.replace(
        speed,
        decode_tokens_per_s=speed.decode_tokens_per_s * factor,
        decode_tokens_per_s_range=None if low_high is None else (low_high[0] * factor, low_high[1] * factor),
        decode_step_s=None if speed.decode_step_s is None else speed.decode_step_s / factor,
        warnings=(*speed.warnings, note),
    )
    return dataclasses.replace(est, speed=new_speed)


def describe_host_part(est: Estimate, ram_item: str) -> str:
    """One line on what of ``est`` lives in host RAM and with which llama.cpp flags (a dense
    model: ``-ngl``; a MoE model: ``-ncmoe``, the layout :func:`with_experts_in_ram` estimates)."""
    mem = est.memory
    layout = expert_layout(est.model, est.quant, max(mem.weights_bytes - mem.host_bytes, 0.0))
    if layout is None:
        return (
            f"{format_gib(mem.host_bytes)} of it lives in {ram_item}: llama.cpp -ngl {mem.placement.gpu_layers}; "
            "decode reads the host part at the RAM's bandwidth."
        )
    return (
        f"{format_gib(layout.host_resident_bytes)} of it (the routed experts of {layout.cpu_moe_layers} of "
        f"{layout.layers} layers) lives in {ram_item}: llama.cpp {layout.flag} (or --override-tensor exps=CPU "
        "for all of them) keeps attention, router and KV cache on the GPU; the CPU reads the chosen experts "
        "at the RAM's bandwidth."
    )
