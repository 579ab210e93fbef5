"""Results out: the record one inference estimate returns, and where each figure came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog.records import Model
from .engines import Engine
from .memory import MemoryEstimate, Workload
from .power import PowerEstimate
from .quant import Quant
from .rig import Rig
from .speed import Link, SpeedEstimate


@dataclass(frozen=True, slots=True)
class Provenance:
    kind: str  # catalogue | measurement | formula | estimate | user-calibrated
    source: str
    formula: str = ""


@dataclass(frozen=True, slots=True)
class Estimate:
    """Everything rigplan knows about one model on one rig for one workload."""

    model: Model
    rig: Rig
    engine: Engine
    quant: Quant
    workload: Workload
    output_tokens: int
    memory: MemoryEstimate
    speed: SpeedEstimate
    power: PowerEstimate
    link: Link
    provenance: dict[str, Provenance] = field(default_factory=dict)
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.memory.fits

    def to_dict(self) -> dict[str, Any]:
        """The nested JSON of design.md §3 (bytes as integers)."""
        placement = self.memory.placement
        return {
            "fits": self.fits,
            "model": self.model.id,
            "rig": self.rig.describe(),
            "engine": self.engine.id,
            "quant": self.quant.id,
            "context": self.workload.context,
            "batch": self.workload.batch,
            "prompt_tokens": self.workload.prompt_tokens,
            "output_tokens": self.output_tokens,
            "kv_dtype": self.workload.kv_dtype,
            "split": placement.split,
            "tensor_parallel": placement.tensor_parallel,
            "pipeline_parallel": placement.pipeline_parallel,
            "link": {"kind": self.link.kind, "lanes": self.link.lanes, "p2p": self.link.p2p},
            "memory": _memory_dict(self.memory),
            "speed": _speed_dict(self.speed),
            "power": self.power.to_dict(),
            "warnings": list(self.warnings),
            "provenance": {
                k: {"kind": v.kind, "source": v.source, **({"formula": v.formula} if v.formula else {})}
                for k, v in sorted(self.provenance.items())
            },
        }


def _range(values: tuple[float, float] | None) -> list[float] | None:
    return list(values) if values else None


def _memory_dict(m: MemoryEstimate) -> dict[str, Any]:
    """``memory`` of the estimate dict: totals, then one entry per GPU in rig order."""
    return {
        "weights_bytes": m.weights_bytes,
        "host_bytes": m.host_bytes,
        "kv_bytes_per_token": round(m.kv_bytes_per_token),
        "kv_pool_tokens": m.kv_pool_tokens,
        "max_concurrent_sequences": m.max_concurrent_sequences,
        "gpu_layers": m.placement.gpu_layers,
        "host_layers": len(m.placement.host_layers),
        "problems": list(m.problems),
        "per_gpu": [
            {
                "gpu": d.gpu.id,
                "capacity_bytes": d.capacity_bytes,
                "usable_bytes": d.usable_bytes,
                "total_bytes": d.total_bytes,
                "weights_bytes": d.weights_bytes,
                "kv_cache_bytes": d.kv_cache_bytes,
                "activations_bytes": d.activations_bytes,
                "overhead_bytes": d.overhead_bytes,
                "layers": len(d.layers),
                "fits": d.fits,
            }
            for d in m.devices
        ],
    }


def _speed_dict(s: SpeedEstimate) -> dict[str, Any]:
    """``speed`` of the estimate dict (None where a quantity does not apply)."""
    return {
        "decode_tokens_per_s": s.decode_tokens_per_s,
        "decode_tokens_per_s_range": _range(s.decode_tokens_per_s_range),
        "decode_throughput_tokens_per_s": s.decode_throughput_tokens_per_s,
        "prefill_tokens_per_s": s.prefill_tokens_per_s,
        "prefill_tokens_per_s_range": _range(s.prefill_tokens_per_s_range),
        "ttft_s": s.ttft_s,
        "engine_profile": s.engine_profile,
        "calibrated_on_user_results": s.calibrated_on_user_results,
        "range_widened_for": list(s.off_data),
        "batch": s.batch,
        "output_throughput_tokens_per_s": s.output_throughput_tokens_per_s,
        "output_throughput_tokens_per_s_range": _range(s.output_throughput_tokens_per_s_range),
    }


def per_user_speed(est: Estimate) -> tuple[float | None, tuple[float, float] | None]:
    """Steady-state output tok/s each of the estimate's ``B = workload.batch`` users gets, and its
    range: the one rule of `rigplan plan --users` and `rigplan capacity`.

    Serving engines (vLLM, SGLang, TensorRT-LLM): the output throughput at concurrency ``B``
    (prompts included as chunked prefill schedules them) ÷ ``B``.  Other engines (llama.cpp,
    ExLlamaV2, ...): each request generates ``O`` tokens, and while it does the engine also
    prefills the ``B`` users' new prompts, so ``O / (prefill of B prompts + O / decode per user
    at batch B)``; ``speed.prefill_s`` is that prefill ("prefill of B prompt(s) of P tokens",
    the ``ttft_s`` derivation).  The range pairs slow decode with slow prefill and fast with
    fast.  No output tokens: the decode speed itself.
    """
    s, b = est.speed, max(est.workload.batch, 1)
    if s.output_throughput_tokens_per_s is not None:
        rng = s.output_throughput_tokens_per_s_range
        return s.output_throughput_tokens_per_s / b, (rng[0] / b, rng[1] / b) if rng else None
    decode, out = s.decode_tokens_per_s, est.output_tokens
    if decode is None or out < 1:
        return decode, s.decode_tokens_per_s_range
    prefill = s.prefill_s or 0.0

    def steady(tps: float, prefill_s: float) -> float:
        return out / (prefill_s + out / tps)

    value = steady(decode, prefill)
    d_rng, p_rng, p_tps = s.decode_tokens_per_s_range, s.prefill_tokens_per_s_range, s.prefill_tokens_per_s
    if d_rng is None:
        return value, None
    if prefill > 0 and p_rng is not None and p_tps:
        slow, fast = prefill * p_tps / p_rng[0], prefill * p_tps / p_rng[1]
    else:
        slow = fast = prefill
    return value, (steady(d_rng[0], slow), steady(d_rng[1], fast))
