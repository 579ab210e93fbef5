"""Speed model: decode, prefill and time to first token, with ranges (see speed/README)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog.records import Model
from ..engines import Engine
from ..memory import MemoryEstimate
from ..quant import Quant
from ..rig import Rig


@dataclass(frozen=True, slots=True)
class Link:
    """How GPUs inside a node talk: "nvlink" | "pcie3" | "pcie4" | "pcie5", lanes per GPU, P2P."""

    kind: str
    lanes: int = 16
    p2p: bool = True


@dataclass(frozen=True, slots=True)
class SpeedWorkload:
    prompt_tokens: int
    output_tokens: int
    context: int
    batch: int = 1


@dataclass(frozen=True, slots=True)
class SpeedEstimate:
    decode_tokens_per_s: float | None
    decode_tokens_per_s_range: tuple[float, float] | None
    decode_throughput_tokens_per_s: float | None
    prefill_tokens_per_s: float | None
    prefill_tokens_per_s_range: tuple[float, float] | None
    ttft_s: float | None
    engine_profile: str
    calibrated_on_user_results: bool = False
    derivations: dict[str, str] = field(default_factory=dict)


def estimate_speed(
    model: Model,
    quant: Quant,
    engine: Engine,
    rig: Rig,
    memory: MemoryEstimate,
    workload: SpeedWorkload,
    link: Link,
    *,
    host_memory_bandwidth_gb_per_s: float | None = None,
    user_profile: object | None = None,
) -> SpeedEstimate:
    """Placeholder until the calibrated speed model lands: every speed is unknown."""
    return SpeedEstimate(None, None, None, None, None, None, engine_profile="none")
