"""Frozen, typed records of the catalogues (GPUs, models, prices, platforms).

A record's fields are exactly the keys its TOML rows may hold; the loader rejects unknown
keys, missing required keys and wrong types, naming the file, the row and the field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from ..units import GB, MIB

GPU_CLASSES = ("consumer", "workstation", "datacenter", "apple")
COOLING = ("open-air", "blower", "passive", "integrated")
NVLINK_KINDS = ("none", "bridge", "sxm")
POWER_CONNECTORS = ("12v-2x6", "12vhpwr", "8-pin-pcie", "8-pin-eps", "6-pin-pcie", "sxm", "oam", "integrated")


@dataclass(frozen=True, slots=True)
class GPU:
    """One GPU model (a board or an SoC) with its sourced specifications.

    Tensor throughputs are dense (no 2:4 sparsity).  ``fp16_tensor_tflops`` is FP16/BF16 with
    FP32 accumulate; ``fp16_acc16_tensor_tflops`` is FP16 accumulate where it differs (GeForce).
    NVLink bandwidth is the bidirectional total per GPU, as vendors print it.
    """

    id: str
    name: str
    vendor: str
    gpu_class: str
    architecture: str
    launch_year: int
    memory_gb: float
    memory_mib: int
    memory_type: str
    bandwidth_gb_per_s: float
    board_power_w: int
    power_connector: str
    power_connector_count: int
    slot_width: float
    cooling: str
    ecc: bool
    form_factor: str
    nvlink: str
    source: str
    as_of: dt.date
    aliases: tuple[str, ...] = ()
    chip: str | None = None
    bus_width_bits: int | None = None
    fp16_tensor_tflops: float | None = None
    fp16_acc16_tensor_tflops: float | None = None
    fp8_tensor_tflops: float | None = None
    int8_tensor_tops: float | None = None
    fp32_tflops: float | None = None
    sm_count: int | None = None
    boost_clock_mhz: int | None = None
    nvlink_generation: int | None = None
    nvlink_gb_per_s: float | None = None
    nvlink_max_gpus: int | None = None
    pcie_generation: int | None = None
    pcie_lanes: int | None = None
    p2p_stock_driver: bool = False
    launch_price_usd: float | None = None
    discontinued: dt.date | None = None  # withdrawn from sale new (planned only when asked for)
    notes: str = ""

    @property
    def memory_bytes(self) -> int:
        """Memory the driver exposes (nvidia-smi "Total"), in bytes."""
        return self.memory_mib * MIB

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gb_per_s * GB

    @property
    def is_apple(self) -> bool:
        return self.gpu_class == "apple"

    @property
    def is_system(self) -> bool:
        """A whole computer on one chip (Apple Mac, DGX Spark, Strix Halo): its own host, one per rig."""
        return self.form_factor == "soc"

    @property
    def has_fp8(self) -> bool:
        return self.fp8_tensor_tflops is not None


@dataclass(frozen=True, slots=True)
class Model:
    """A model architecture with the fields memory and speed need, sourced.

    ``ffn_kind`` is "gated" (SwiGLU/GeGLU: gate, up, down) or "plain" (up, down).
    ``sliding_window_pattern`` k > 0 means k-1 of every k layers use the sliding window
    (Gemma 2: 2, alternating); 1 means every layer does; 0 means none.
    """

    id: str
    name: str
    family: str
    hf_repo: str
    architecture: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    ffn_size: int
    vocab_size: int
    tie_embeddings: bool
    max_context: int
    published_param_count: int
    source: str
    as_of: dt.date
    aliases: tuple[str, ...] = ()
    head_dim: int | None = None
    ffn_kind: str = "gated"
    attention_bias: bool = False
    moe_num_experts: int = 0
    moe_active_experts: int = 0
    moe_shared_experts: int = 0
    moe_ffn_size: int = 0
    moe_first_dense_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    sliding_window_pattern: int = 0
    release_dtype: str = "bf16"
    notes: str = ""

    @property
    def is_moe(self) -> bool:
        return self.moe_num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0


@dataclass(frozen=True, slots=True)
class Price:
    """A dated price of one GPU, with its kind and source.

    ``usd`` is the price of the unit the part is sold in: one card, or for SXM modules a board or
    server of ``unit_gpus`` GPUs.  ``complete_machine`` marks a price that includes the host (a
    DGX/HGX server, a Mac Studio, a DGX Spark): no platform or PSU is added to it.
    """

    gpu: str
    usd: float
    kind: str  # "launch" | "street" (new, at retail) | "used" | "yours"
    source: str
    as_of: dt.date
    unit_gpus: int = 1
    complete_machine: bool = False
    notes: str = ""

    @property
    def usd_per_gpu(self) -> float:
        return self.usd / self.unit_gpus


@dataclass(frozen=True, slots=True)
class PriceGap:
    """Why a GPU that is (or was) sold has no dated price row: the unit it is sold in, or no
    dated public figure found, with where rigplan looked."""

    gpu: str
    reason: str
    source: str
    as_of: dt.date
    notes: str = ""

    @property
    def short_reason(self) -> str:
        """The reason's first clause without its asides: "sold only as GB200 NVL72 racks"."""
        head = self.reason.split(";")[0]
        return re.sub(r"\s*\([^)]*\)", "", head).strip()


@dataclass(frozen=True, slots=True)
class Platform:
    """A host platform class: what it gives GPUs and what it costs."""

    id: str
    name: str
    platform_class: str  # desktop | hedt | server
    cpu_pcie_lanes: int
    max_gpus: int
    gpu_slots: int
    slot_spacing: int
    pcie_generation: int
    cpu_power_w: int
    base_power_w: int
    host_memory_bandwidth_gb_per_s: float
    max_host_ram_gb: int
    source: str
    as_of: dt.date
    cost_usd: float | None = None  # None: no dated public source prices it
    examples: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True, slots=True)
class PsuPrice:
    """A sourced price of an ATX PSU of one size (psus.toml)."""

    watts: int
    usd: float
    source: str
    as_of: dt.date
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Correction:
    """A common buyer's-guide claim about a GPU that is wrong, and the fact."""

    gpu: str
    claim: str
    fact: str
    source: str
    as_of: dt.date


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything the estimating functions look up, passed to them as one argument."""

    gpus: dict[str, GPU]
    models: dict[str, Model]
    prices: dict[str, tuple[Price, ...]] = field(default_factory=dict)
    platforms: dict[str, Platform] = field(default_factory=dict)
    corrections: dict[str, tuple[Correction, ...]] = field(default_factory=dict)
    price_gaps: dict[str, tuple[PriceGap, ...]] = field(default_factory=dict)
    #: PSU sizes with prices, smallest first (psus.toml)
    psu_prices: tuple[PsuPrice, ...] = ()
