"""What each GPU reads and computes: weights by kernel class, experts, output head, KV cache.

Built from the model's tensors, the quant's per-tensor storage and the placement, once per
(model, quant, placement) and cached: the decode and prefill formulas then only scale these.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from .. import arch
from ..catalog.records import GPU, Model
from ..memory.kv_cache import kv_heads_fraction
from ..placement import Placement
from ..quant import Quant, kv_bytes_per_element, tensor_storage
from .profile import WEIGHT_CLASSES

_GGML_CLASS = {
    "f32": "float",
    "f16": "float",
    "bf16": "float",
    "q8_0": "q8_0",
    "q8_1": "q8_0",
    "q4_0": "legacy",
    "q4_1": "legacy",
    "q5_0": "legacy",
    "q5_1": "legacy",
    "iq4_nl": "legacy",
    "q4_k": "k4",
    "q5_k": "k4",
    "q6_k": "k6",
    "q2_k": "k_low",
    "q3_k": "k_low",
}


def weight_class(storage_type: str) -> str:
    """Kernel class of a tensor's storage type ("q4_k" → "k4", "int4-g128" → "int4")."""
    if storage_type in _GGML_CLASS:
        return _GGML_CLASS[storage_type]
    for prefix in ("exl2", "int4", "nf4", "fp8", "int8"):
        if storage_type.startswith(prefix):
            return prefix
    if storage_type.startswith(("iq", "tq", "mxfp4")):
        return "iquant"
    return "float"


@dataclass(frozen=True, slots=True)
class WeightSet:
    """Elements per kernel class and bytes of a group of tensors."""

    elements: tuple[float, ...]  # aligned with WEIGHT_CLASSES
    nbytes: float

    @property
    def total_elements(self) -> float:
        return sum(self.elements)

    @property
    def quantized_elements(self) -> float:
        return self.total_elements - self.elements[WEIGHT_CLASSES.index("float")]

    def scaled(self, factor: float) -> WeightSet:
        return WeightSet(tuple(e * factor for e in self.elements), self.nbytes * factor)

    def plus(self, other: WeightSet) -> WeightSet:
        return WeightSet(
            tuple(a + b for a, b in zip(self.elements, other.elements, strict=True)), self.nbytes + other.nbytes
        )


EMPTY = WeightSet(tuple(0.0 for _ in WEIGHT_CLASSES), 0.0)


@dataclass(frozen=True, slots=True)
class LayerWeights:
    dense: WeightSet  # attention, dense FFN, shared experts, router, norms
    experts: WeightSet  # all routed experts of the layer


@dataclass(frozen=True, slots=True)
class ModelWeights:
    layers: tuple[LayerWeights, ...]
    output: WeightSet  # lm_head (the embedding matrix when tied) + final norm
    embedding_bytes: float


def _add(acc: dict[str, list[float]], key: str, cls: str, n: float, b: float) -> None:
    slot = acc[key]
    slot[WEIGHT_CLASSES.index(cls)] += n
    slot[-1] += b


@functools.lru_cache(maxsize=256)
def model_weights(model: Model, quant: Quant) -> ModelWeights:
    """Per-layer weight sets of ``model`` stored as ``quant``."""
    ts, types, sizes = tensor_storage(model, quant)
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0] * (len(WEIGHT_CLASSES) + 1))
    embedding = 0.0
    for t, st, nb in zip(ts, types, sizes, strict=True):
        cls = weight_class(st)
        if t.role == arch.EMBEDDING:
            embedding = float(nb)
            if model.tie_embeddings:  # the shared matrix is read whole as the output head
                _add(acc, "output", cls, t.n_elements, nb)
            continue
        if t.layer is None:
            _add(acc, "output", cls, t.n_elements, nb)
        elif t.role == arch.EXPERT:
            _add(acc, f"e{t.layer}", cls, t.n_elements, nb)
        else:
            _add(acc, f"d{t.layer}", cls, t.n_elements, nb)

    def ws(key: str) -> WeightSet:
        v = acc.get(key)
        return WeightSet(tuple(v[:-1]), v[-1]) if v else EMPTY

    layers = tuple(LayerWeights(ws(f"d{i}"), ws(f"e{i}")) for i in range(model.num_layers))
    return ModelWeights(layers, ws("output"), embedding)


@dataclass(frozen=True, slots=True)
class DeviceWork:
    """One GPU's share of one forward step (per token of batch for weights: read once)."""

    gpu: GPU
    layers: tuple[int, ...]
    shard: int
    dense: WeightSet  # per step, whatever the batch
    experts: WeightSet  # all experts held; a step reads the touched fraction
    output: WeightSet  # lm_head share if this GPU holds it
    kv_layers: tuple[int, ...]  # layers whose KV cache this GPU holds and reads
    kv_shard_fraction: float
    #: KV elements per cached token over kv_layers: full-attention layers, and (elements,
    #: window) of sliding-window layers, which keep at most ``window`` tokens.
    kv_full_elements: float = 0.0
    kv_windowed: tuple[tuple[float, int], ...] = ()
    #: how many of kv_layers keep only the sliding window (0 where the engine caches it all)
    kv_window_layers: int = 0

    def step_weights(self, experts_fraction: float) -> WeightSet:
        """Weights one decode step reads: dense + the touched experts + the output head."""
        if experts_fraction >= 1.0 or not self.experts.nbytes:
            return self.all_weights
        return self.dense.plus(self.experts.scaled(experts_fraction)).plus(self.output)

    @property
    def all_weights(self) -> WeightSet:
        return _sum3(self.dense, self.experts, self.output)

    def kv_elements(self, context: float) -> float:
        """KV elements (all heads) one sequence at ``context`` tokens keeps over kv_layers: a
        sliding-window layer at most its window."""
        return self.kv_full_elements * context + sum(n * min(context, window) for n, window in self.kv_windowed)

    def kv_bytes(self, context: int, bytes_per_element: float) -> float:
        """KV bytes of one sequence at ``context`` tokens on this GPU (its shard)."""
        return self.kv_elements(context) * bytes_per_element * self.kv_shard_fraction


@dataclass(frozen=True, slots=True)
class ForwardWork:
    """The whole placement as pipeline stages of GPUs working together (TP group)."""

    stages: tuple[tuple[DeviceWork, ...], ...]
    host_layers: tuple[int, ...]
    host: WeightSet  # weights of offloaded layers (+ output if on host)
    host_experts: WeightSet
    split: str
    tensor_parallel: int
    honor_window: bool = True  # the engine caches only the window on sliding-window layers


@functools.lru_cache(maxsize=1024)
def forward_work(model: Model, quant: Quant, placement: Placement, honor_window: bool = True) -> ForwardWork:
    """Group ``placement``'s devices into pipeline stages and sum what each one holds."""
    mw = model_weights(model, quant)
    stages: list[list[DeviceWork]] = []
    last_layers: tuple[int, ...] | None = None
    for share in placement.devices:
        dense, experts = _layer_sums(model, quant, tuple(share.layers))
        shard = max(share.shard, 1)
        if placement.split == "row":  # row split divides the matrices, KV on the main GPU
            kv_layers = tuple(share.layers) if share.holds_kv else ()
            kv_fraction = 1.0
        else:
            kv_layers = tuple(share.layers) if share.holds_kv else ()
            kv_fraction = kv_heads_fraction(model, shard)
        full, windowed, window_layers = _kv_elements(model, kv_layers, honor_window)
        work = DeviceWork(
            gpu=share.gpu,
            layers=tuple(share.layers),
            shard=shard,
            dense=dense.scaled(1 / shard),
            experts=experts.scaled(1 / shard),
            output=mw.output.scaled(1 / shard) if share.holds_output else EMPTY,
            kv_layers=kv_layers,
            kv_shard_fraction=kv_fraction,
            kv_full_elements=full,
            kv_windowed=windowed,
            kv_window_layers=window_layers,
        )
        # Devices with the same layers form one tensor-parallel stage.
        if stages and share.layers == last_layers and placement.split in ("tensor", "row"):
            stages[-1].append(work)
        else:
            stages.append([work])
        last_layers = share.layers
    host, host_experts = _layer_sums(model, quant, tuple(placement.host_layers))
    if placement.output_on_host:
        host = host.plus(mw.output)
    return ForwardWork(
        tuple(tuple(s) for s in stages),
        tuple(placement.host_layers),
        host,
        host_experts,
        placement.split,
        placement.tensor_parallel,
        honor_window,
    )


def _total(sets: list[WeightSet]) -> WeightSet:
    """EMPTY.plus(sets[0]).plus(sets[1])…, in one pass (the same additions in the same order)."""
    return WeightSet(
        tuple(sum(column, 0.0) for column in zip(*(w.elements for w in sets), strict=True)) if sets else EMPTY.elements,
        sum((w.nbytes for w in sets), 0.0),
    )


@functools.lru_cache(maxsize=4096)
def _layer_sums(model: Model, quant: Quant, layers: tuple[int, ...]) -> tuple[WeightSet, WeightSet]:
    """(dense, routed experts) summed over ``layers``: the same for every GPU holding them, so
    cached (the planner places one model on many GPU types; issue 15's sweep time)."""
    mw = model_weights(model, quant)
    return _total([mw.layers[i].dense for i in layers]), _total([mw.layers[i].experts for i in layers])


@functools.lru_cache(maxsize=4096)
def _sum3(a: WeightSet, b: WeightSet, c: WeightSet) -> WeightSet:
    return a.plus(b).plus(c)


def _kv_elements(
    model: Model, layers: tuple[int, ...], honor_window: bool
) -> tuple[float, tuple[tuple[float, int], ...], int]:
    """(KV elements per token of full-attention layers, (elements, window) of sliding-window
    layers, how many layers keep only the window)."""
    full = 0.0
    windows: dict[int, float] = {}
    local = 0
    for i in layers:
        n = arch.kv_elements_per_token(model, i)
        if honor_window and arch.is_local_layer(model, i):
            windows[model.sliding_window] = windows.get(model.sliding_window, 0.0) + n
            local += 1
        else:
            full += n
    return full, tuple((n, w) for w, n in windows.items()), local


def experts_active_fraction(model: Model) -> float:
    """Share of a layer's routed experts one token multiplies with (k of E)."""
    if not model.is_moe:
        return 1.0
    return model.moe_active_experts / model.moe_num_experts


def experts_read_fraction(model: Model, tokens: float) -> float:
    """Share of a layer's routed experts that ``tokens`` tokens touch (uniform routing)."""
    if not model.is_moe:
        return 1.0
    return arch.expected_experts_touched(model, max(round(tokens), 1)) / model.moe_num_experts


@functools.lru_cache(maxsize=8192)
def kv_read_bytes(
    model: Model, layers: tuple[int, ...], context: int, bytes_per_element: float, honor_window: bool = True
) -> float:
    """KV-cache bytes one sequence of ``context`` tokens holds over ``layers`` (one read)."""
    if not layers or context <= 0:
        return 0.0
    elements = sum(
        arch.kv_elements_per_token(model, i) * arch.kv_tokens_in_layer(model, i, context, honor_window=honor_window)
        for i in layers
    )
    return elements * bytes_per_element


def kv_element_bytes(kv_dtype: str) -> float:
    """Bytes per cached element of a KV dtype ("f16" 2, "q8_0" 34/32, "fp8" 1)."""
    return kv_bytes_per_element(kv_dtype)


def query_group(model: Model) -> float:
    """Query heads per KV head (1 for MHA and MLA)."""
    if model.is_mla or model.num_kv_heads <= 0:
        return 1.0
    return model.num_heads / model.num_kv_heads
