"""Serving speed of a vLLM-class engine: per-user decode, output throughput at a concurrency,
prefill and time to first token, with ranges — from :mod:`.batch`'s step model.

``decode_tokens_per_s`` is one sequence's speed while ``batch`` sequences decode together (the
step averaged over the output tokens, as ``vllm bench`` reports TPOT); the output throughput
adds the other requests' prompts as chunked prefill schedules them, so it is what a server
delivers in steady state at that concurrency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..catalog.records import GPU, Model
from ..quant import FP4_QUANTS, Quant
from ..rig import Rig
from . import comm, hardware
from .batch import FP4_ARCHITECTURES, Links, ServingProfile, ServingStep, chunked_schedule, round_step_s, serving_step
from .decode import context_samples
from .ranges import speed_range, widening
from .work import ForwardWork

#: Uncalibrated hardware kinds widen the log-range this much (as the single-stream profiles).
UNCALIBRATED_WIDENING = 1.5


@dataclass(frozen=True, slots=True)
class ServingSpeed:
    decode_tokens_per_s: float | None
    decode_range: tuple[float, float] | None
    decode_step_s: float | None
    output_throughput_tokens_per_s: float | None
    output_throughput_range: tuple[float, float] | None
    prefill_tokens_per_s: float | None
    prefill_range: tuple[float, float] | None
    prefill_s: float | None
    ttft_s: float | None
    batch: int
    label: str
    reasons: tuple[str, ...]
    derivations: dict[str, str]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def _step_text(step: ServingStep) -> str:
    return (
        f"slowest GPU ({step.gpu}): smoothmax(memory {_ms(step.memory_s)}, compute {_ms(step.compute_s)})"
        f" + kernels {_ms(step.kernels_s)}; all-reduce/all-to-all {_ms(step.comm_s)};"
        f" step overhead {_ms(step.overhead_s)}; step {_ms(step.total_s)}"
    )


def off_data(profile: ServingProfile, rig: Rig, model: Model, quant: Quant) -> list[str]:
    """The ways this estimate leaves the conditions the serving profile was fitted on."""
    reasons = []
    kinds = sorted({hardware.hardware_kind(g) for g in rig.gpus})
    missing = [k for k in kinds if k not in profile.calibrated_kinds]
    if missing:
        reasons.append(f"hardware kind {', '.join(missing)} not in the calibration rows")
    if rig.nodes > 1:
        reasons.append("several nodes")
    if model.is_moe and "moe" not in profile.calibrated_kinds:
        reasons.append("mixture-of-experts model (no MoE rows in the serving profile)")
    slow = sorted({g.id for g in rig.gpus if g.architecture not in FP4_ARCHITECTURES})
    if quant.id in FP4_QUANTS and slow:
        reasons.append(f"{quant.id} without FP4 tensor cores on {', '.join(slow)}: weight-only (Marlin) kernels")
    return reasons


def link_models(rig: Rig, work: ForwardWork, kind: str, lanes: int, p2p: bool, custom_all_reduce: bool) -> Links:
    """(link inside a node, network, node of each pipeline stage, whether each stage spans nodes)."""
    gpus: tuple[GPU, ...] = rig.gpus
    intra = comm.intra_node_link(kind, lanes, p2p, gpus, custom_all_reduce=custom_all_reduce)
    per_node = max(rig.gpus_per_node, 1)
    nodes, spans, index = [], [], 0
    for stage in work.stages:
        nodes.append(index // per_node)
        spans.append(index // per_node != (index + len(stage) - 1) // per_node)
        index += len(stage)
    return intra, comm.network_link(rig.network), tuple(nodes), tuple(spans)


StepFn = Callable[..., ServingStep]
_Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Context:
    """What the parts of :func:`serving_speed` share: the step function and the range rules."""

    step: StepFn
    profile: ServingProfile
    budget: int
    widen: float
    label: str
    derivations: dict[str, str]
    moe: bool = False


def _decode(
    c: _Context, batch: int, prompt_tokens: int, output_tokens: int
) -> tuple[float, _Range, float, float, _Range]:
    """(decode tok/s, its range, mean step s, output throughput, its range) at concurrency ``batch``."""
    steps = [c.step(batch, ctx) for ctx in context_samples(prompt_tokens, output_tokens)]
    step_s = sum(s.total_s for s in steps) / len(steps)
    decode_tps = 1.0 / step_s
    c.derivations["decode_tokens_per_s"] = (
        f"{batch} sequence(s) decoding, mean step over {output_tokens} output tokens {_ms(step_s)};"
        f" at mid context: {_step_text(steps[len(steps) // 2])} [{c.label}]"
    )
    plan = chunked_schedule(c.budget, batch, prompt_tokens, output_tokens)
    mid = prompt_tokens + output_tokens // 2
    mixed = c.step(plan.decode_per_step, mid, plan.prefill_per_step, prompt_tokens / 2)
    mean_s = round_step_s(lambda *a: c.step(*a).total_s, plan, c.budget, prompt_tokens, mid, c.moe)
    throughput = plan.decode_per_step / mean_s
    c.derivations["output_throughput_tokens_per_s"] = (
        f"chunked prefill at concurrency {batch}: {plan.decode_per_step:.4g} decode + {plan.prefill_per_step:.4g} "
        f"prompt tokens per step over {plan.steps_per_round:.4g} steps per round (prompts in chunks of "
        f"≤ {min(c.budget, prompt_tokens)} tokens, mean step {_ms(mean_s)}); spread evenly: {_step_text(mixed)} → "
        f"{throughput:.4g} output tok/s [{c.label}]"
    )
    band = c.profile.spread_at(batch)  # one band for both: throughput is batch × decode less the prompts
    return (
        decode_tps,
        speed_range(decode_tps, band, c.widen),
        step_s,
        throughput,
        speed_range(throughput, band, c.widen),
    )


def _prefill(c: _Context, batch: int, prompt_tokens: int) -> tuple[float, _Range, float]:
    """(prefill tok/s, its range, seconds) for ``batch`` prompts in chunks of the step budget."""
    total_tokens = prompt_tokens * batch
    chunks, done, prefill_s = 0, 0, 0.0
    first: ServingStep | None = None
    while done < total_tokens:
        chunk = min(c.budget, total_tokens - done)
        part = c.step(0, 0, chunk, (done % prompt_tokens) + chunk / 2)
        first = first or part
        prefill_s += part.total_s
        done += chunk
        chunks += 1
    prefill_tps = total_tokens / prefill_s
    c.derivations["prefill_tokens_per_s"] = (
        f"{prompt_tokens} tokens × {batch} in {chunks} chunk(s) of ≤ {c.budget} tokens: {_ms(prefill_s)};"
        f" first chunk: {_step_text(first) if first else ''} [{c.label}]"
    )
    c.derivations["ttft_s"] = f"prefill of {batch} prompt(s) of {prompt_tokens} tokens = {prefill_s:.4g} s"
    return prefill_tps, speed_range(prefill_tps, c.profile.many_users_spread, c.widen), prefill_s


def serving_speed(
    profile: ServingProfile,
    model: Model,
    quant: Quant,
    rig: Rig,
    work: ForwardWork,
    links: Links,
    kv_element_bytes: float,
    *,
    batch: int,
    prompt_tokens: int,
    output_tokens: int,
) -> ServingSpeed:
    """Per-user decode, output throughput at ``batch``, prefill and TTFT on ``rig``."""

    def step(decode: float, context: int, prefill: float = 0.0, position: float = 0.0) -> ServingStep:
        return serving_step(profile, work, model, quant, kv_element_bytes, links, decode, context, prefill, position)

    reasons = off_data(profile, rig, model, quant)
    uncalibrated = any(r.startswith("hardware") for r in reasons)
    widen = widening(reasons, UNCALIBRATED_WIDENING if uncalibrated else 1.0)
    c = _Context(step, profile, profile.behaviour.token_budget(rig.gpus[0]), widen, profile.label(), {}, model.is_moe)
    decode_tps = decode_range = step_s = throughput = throughput_range = None
    if output_tokens > 0:
        decode_tps, decode_range, step_s, throughput, throughput_range = _decode(c, batch, prompt_tokens, output_tokens)
    prefill_tps = prefill_range = prefill_s = ttft = None
    if prompt_tokens > 0:
        prefill_tps, prefill_range, prefill_s = _prefill(c, batch, prompt_tokens)
        ttft = prefill_s
    elif step_s is not None:
        ttft = step_s
        c.derivations["ttft_s"] = f"no prompt: one decode step = {_ms(step_s)}"
    return ServingSpeed(
        decode_tokens_per_s=decode_tps,
        decode_range=decode_range,
        decode_step_s=step_s,
        output_throughput_tokens_per_s=throughput,
        output_throughput_range=throughput_range,
        prefill_tokens_per_s=prefill_tps,
        prefill_range=prefill_range,
        prefill_s=prefill_s,
        ttft_s=ttft,
        batch=batch,
        label=c.label,
        reasons=tuple(reasons),
        derivations=c.derivations,
    )
