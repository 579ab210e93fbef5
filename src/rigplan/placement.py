"""Placement: which layers (or which shard of every layer) each GPU holds.

- layer split (llama.cpp default, ExLlamaV2 gpu_split, HF device_map): contiguous layer
  ranges in proportion to memory; llama.cpp counts the output head as one more layer and
  puts it on the last GPU (``llm_load_tensors``: ``upper_bound(splits, i / (n_layer + 1))``).
- tensor parallel (vLLM class; llama.cpp's experimental ``tensor`` split): every layer divided by the TP degree
  inside a node; pipeline stages (layer ranges) across nodes.
- llama.cpp ``row``: weight matrices divided across GPUs, KV cache and buffers on the main GPU.
- partial offload (``-ngl``): the first layers stay in host RAM, the last ones go to GPUs.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .catalog.records import GPU, Model
from .engines import LLAMA_CPP, Engine
from .errors import InvalidValueError, UnsupportedError
from .rig import Rig

SPLITS = ("layer", "row", "tensor", "pipeline")


@dataclass(frozen=True, slots=True)
class DeviceShare:
    """What one GPU holds: whole ``layers`` divided by ``shard`` (1 = whole layers)."""

    gpu: GPU
    layers: tuple[int, ...]
    shard: int
    holds_output: bool
    holds_embedding: bool
    holds_kv: bool = True
    is_main: bool = False


@dataclass(frozen=True, slots=True)
class Placement:
    split: str
    devices: tuple[DeviceShare, ...]
    host_layers: tuple[int, ...]
    output_on_host: bool
    tensor_parallel: int
    pipeline_parallel: int

    @property
    def gpu_layers(self) -> int:
        """Blocks held by GPUs (llama.cpp's ``-ngl`` is this plus one when the output head is on a GPU)."""
        return len({i for d in self.devices for i in d.layers})


def _proportional_ranges(n_items: int, weights: list[float]) -> list[range]:
    """Split ``n_items`` into contiguous ranges as llama.cpp does (upper_bound on cumulative shares)."""
    total = sum(weights)
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    owner = [min(bisect.bisect_right(cumulative, i / n_items), len(weights) - 1) for i in range(n_items)]
    return [
        range(owner.index(k), len(owner) - owner[::-1].index(k)) if k in owner else range(0)
        for k in range(len(weights))
    ]


def tensor_parallel_problems(model: Model, tp: int) -> list[str]:
    """Why a tensor-parallel degree cannot split ``model`` (empty when it can).

    The degree must divide the attention heads, and the KV heads must divide it or be divided
    by it (vLLM replicates KV heads when TP exceeds them); MLA's latent has no KV heads to split.
    """
    if tp <= 1:
        return []
    problems = []
    if model.num_heads % tp:
        problems.append(f"{model.num_heads} attention heads do not divide by {tp}")
    if not model.is_mla and model.num_kv_heads % tp and tp % model.num_kv_heads:
        problems.append(f"{model.num_kv_heads} KV heads and {tp} do not divide one another")
    return problems


def default_split(engine: Engine, rig: Rig) -> str:
    if engine.family == LLAMA_CPP or engine.default_split == "layer":
        return "layer"
    return "tensor"


def place(
    model: Model,
    rig: Rig,
    engine: Engine,
    *,
    split: str | None = None,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    gpu_layers: int | None = None,
) -> Placement:
    """Decide which GPU holds what.

    Args:
        gpu_layers: llama.cpp ``-ngl``: blocks on GPUs counting the output head as one more
            (None = all).  Fewer leaves the first blocks in host RAM.

    Raises:
        InvalidValueError: a split or parallel layout that does not match the rig.
        UnsupportedError: a split the engine does not have.
    """
    split = _check_split(model, rig, engine, split, gpu_layers)
    if split in ("layer", "row"):
        if tensor_parallel not in (None, 1) or pipeline_parallel not in (None, 1):
            raise InvalidValueError("tensor_parallel", f"split {split!r} takes no TP/PP degrees")
        return _layer_placement(model, rig.all_gpus, split, gpu_layers)
    return _parallel_placement(model, rig, split, tensor_parallel, pipeline_parallel)


def _check_split(model: Model, rig: Rig, engine: Engine, split: str | None, gpu_layers: int | None) -> str:
    """The split to use (the engine's default when None), checked against the engine and rig."""
    split = split or default_split(engine, rig)
    if split == "pipeline" and engine.family == LLAMA_CPP:
        split = "layer"  # llama.cpp's layer split is its pipeline parallelism
    if split not in SPLITS:
        raise InvalidValueError("split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "row" and engine.family != LLAMA_CPP:
        raise UnsupportedError(f"split 'row' is a llama.cpp mode; {engine.name} has no row split")
    if split in ("layer", "row") and rig.nodes > 1:
        raise UnsupportedError(
            f"{engine.name} {split} split runs inside one machine; multi-node rigs need "
            "an engine with pipeline parallelism across nodes (vllm, sglang, tensorrt-llm)"
        )
    if gpu_layers is not None:
        if gpu_layers < 0:
            raise InvalidValueError("gpu_layers", f"must be ≥ 0, got {gpu_layers}")
        if split not in ("layer",) and gpu_layers < model.num_layers + 1:
            raise UnsupportedError("partial offload (gpu_layers) needs the layer split")
    return split


def _parallel_placement(
    model: Model, rig: Rig, split: str, tensor_parallel: int | None, pipeline_parallel: int | None
) -> Placement:
    """Tensor-parallel groups of ``tp`` GPUs in ``pp`` pipeline stages of equal layer counts."""
    n_layer = model.num_layers
    gpus = rig.all_gpus
    tp = tensor_parallel or (rig.gpus_per_node if split == "tensor" else 1)
    pp = pipeline_parallel or max(1, len(gpus) // tp)
    if tp * pp != len(gpus):
        raise InvalidValueError(
            "tensor_parallel",
            f"TP {tp} × PP {pp} = {tp * pp} GPUs, but the rig has {len(gpus)}",
        )
    if pp > n_layer:
        raise InvalidValueError("pipeline_parallel", f"PP {pp} exceeds the model's {n_layer} layers")
    problems = tensor_parallel_problems(model, tp)
    if problems:
        raise UnsupportedError(f"tensor parallel {tp} on {model.id}: {'; '.join(problems)}")
    stages = _proportional_ranges(n_layer, [1.0] * pp)
    devices = [
        DeviceShare(
            gpu=gpus[s * tp + r],
            layers=tuple(layers),
            shard=tp,
            holds_output=s == pp - 1,
            holds_embedding=s == 0,
            is_main=s == 0 and r == 0,
        )
        for s, layers in enumerate(stages)
        for r in range(tp)
    ]
    return Placement("tensor" if tp > 1 else "pipeline", tuple(devices), (), False, tp, pp)


def _layer_placement(model: Model, gpus: tuple[GPU, ...], split: str, gpu_layers: int | None) -> Placement:
    n_layer = model.num_layers
    n_gpu = min(n_layer + 1 if gpu_layers is None else gpu_layers, n_layer + 1)
    start = max(n_layer - n_gpu, 0)
    host_layers = tuple(range(start))
    output_on_gpu = n_gpu > n_layer
    weights = [float(g.memory_mib) for g in gpus]
    if split == "row":
        devices = tuple(
            DeviceShare(
                g,
                tuple(range(start, n_layer)),
                len(gpus),
                holds_output=output_on_gpu,
                holds_embedding=False,
                holds_kv=i == 0,
                is_main=i == 0,
            )
            for i, g in enumerate(gpus)
        )
        return Placement("row", devices, host_layers, not output_on_gpu, len(gpus), 1)
    # llama.cpp counts the output head as item n_layer of n_gpu "layers" on the GPUs.
    ranges = _proportional_ranges(max(n_gpu, 1), weights) if n_gpu else [range(0)] * len(gpus)
    shares: list[DeviceShare] = []
    for i, (g, r) in enumerate(zip(gpus, ranges, strict=True)):
        layers = tuple(start + k for k in r if start + k < n_layer)
        shares.append(
            DeviceShare(
                g, layers, 1, holds_output=output_on_gpu and i == len(gpus) - 1, holds_embedding=False, is_main=i == 0
            )
        )
    return Placement("layer", tuple(shares), host_layers, not output_on_gpu, 1, len(gpus))
