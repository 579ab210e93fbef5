"""Speed model: decode, prefill and time to first token, with ranges and the profile used.

``estimate_speed`` is a pure function of its inputs and an engine profile (data fitted by
``rigplan.calibration.fit``).  The formulas live in :mod:`.decode` and :mod:`.prefill`, what each
GPU reads in :mod:`.work`, links in :mod:`.comm`, hardware-derived quantities in
:mod:`.hardware` and ranges in :mod:`.ranges`; docs/speed-model.md explains the method.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..catalog.records import Model
from ..engines import LLAMA_CPP, VLLM, Engine
from ..memory import MemoryEstimate
from ..memory.kv_cache import honors_window
from ..quant import Quant
from ..rig import Rig
from ..units import GB
from . import comm, serving
from .batch import ServingProfile
from .decode import Step, Topology, average_step, step_time
from .prefill import BUILD_ERA_REFERENCE, Prefill, prefill_time
from .profile import EngineBehaviour, EngineProfile, SpeedParameters, Spread, UserCorrection
from .provenance import ProfileChoice, Ranges, extrapolation_of, ranges_for, resolve_profile
from .ranges import speed_range
from .select import build_of, select_profile
from .settings import SpeedSettings
from .work import ForwardWork, forward_work, kv_element_bytes

#: Host memory bandwidth when the rig does not say (GB/s): a desktop's dual-channel DDR5-5600
#: (2 × 8 B × 5.6 GT/s = 89.6) for consumer and workstation GPUs, an 8-channel DDR5-4800
#: server (307.2) for datacenter GPUs [D: JEDEC DDR5 rates].
DESKTOP_HOST_BANDWIDTH_GB_PER_S = 89.6
SERVER_HOST_BANDWIDTH_GB_PER_S = 307.2
#: PCIe generation assumed between host and GPU when the catalogue has none.
DEFAULT_PCIE_GENERATION = 4


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
    kv_dtype: str | None = None  # None: inferred from the memory estimate's KV bytes per token
    depth: int = 0  # tokens already cached before the prompt (llama-bench -d)


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
    decode_step_s: float | None = None
    prefill_s: float | None = None
    off_data: tuple[str, ...] = ()
    #: How far the estimate travels from the profile's rows ("GPU seen", "same architecture",
    #: "new architecture", "new vendor", "prior profile"; then dense / MoE and the backend).
    extrapolation: str = ""
    #: Caveats of the speed itself (a backend without a profile of its own, a build outside
    #: the profile's rows).
    warnings: tuple[str, ...] = ()
    flash_attention: bool | None = None
    backend: str | None = None
    batch: int = 1
    #: Output tokens/s of all sequences, prompts included as the engine schedules them.
    output_throughput_tokens_per_s: float | None = None
    output_throughput_tokens_per_s_range: tuple[float, float] | None = None


def with_settings(profile: EngineProfile, settings: SpeedSettings | None) -> EngineProfile:
    """``profile`` with the flash-attention choice and build of ``settings`` (None: the build's
    default; no build: the profile's newest fitted build).  A build past the newest fitted one is
    priced as that build: the build-era term is not extrapolated beyond its rows (the range says
    so, :func:`.provenance.past_fitted_builds`)."""
    behaviour = profile.behaviour
    if settings is not None and settings.flash_attention is not None:
        behaviour = dataclasses.replace(behaviour, flash_attention=settings.flash_attention)
    newest = profile.fitted_builds[1] if profile.fitted_builds else 0
    build = build_of(settings) or newest
    if newest:
        build = min(build, newest)
    if build != behaviour.build:
        behaviour = dataclasses.replace(behaviour, build=build)
    return profile if behaviour is profile.behaviour else dataclasses.replace(profile, behaviour=behaviour)


def _kv_element_bytes(model: Model, memory: MemoryEstimate, workload: SpeedWorkload) -> float:
    if workload.kv_dtype:
        return kv_element_bytes(workload.kv_dtype)
    from .. import arch

    elements = sum(arch.kv_elements_per_token(model, i) for i in range(model.num_layers))
    if elements <= 0 or memory.kv_bytes_per_token <= 0:
        return kv_element_bytes("f16")
    return memory.kv_bytes_per_token / elements


def _topology(
    rig: Rig, work: ForwardWork, link: Link, behaviour: EngineBehaviour, host_gb_per_s: float | None
) -> Topology:
    gpus = rig.gpus
    intra = comm.intra_node_link(link.kind, link.lanes, link.p2p, gpus, custom_all_reduce=behaviour.custom_all_reduce)
    per_node = max(rig.gpus_per_node, 1)
    nodes, index = [], 0
    for stage in work.stages:
        nodes.append(index // per_node)
        index += len(stage)
    if host_gb_per_s is None:
        datacenter = any(g.gpu_class == "datacenter" for g in gpus)
        host_gb_per_s = SERVER_HOST_BANDWIDTH_GB_PER_S if datacenter else DESKTOP_HOST_BANDWIDTH_GB_PER_S
    gens = [g.pcie_generation for g in gpus if g.pcie_generation]
    host_link = comm.pcie_bytes_per_s(min(gens) if gens else DEFAULT_PCIE_GENERATION, link.lanes)
    return Topology(
        link=intra,
        network=comm.network_link(rig.network),
        stage_nodes=tuple(nodes),
        tp_spans_nodes=work.tensor_parallel > per_node,
        host_bandwidth_bytes_per_s=host_gb_per_s * GB,
        host_link_bytes_per_s=host_link,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def _decode_text(step: Step, mean_s: float, workload: SpeedWorkload, work: ForwardWork, label: str) -> str:
    dev = step.slowest
    gpu_text = ""
    if dev is not None:
        attention = f" + attention arithmetic beyond its bytes {_ms(dev.attention_s)}" if dev.attention_s else ""
        gpu_text = (
            f"slowest GPU ({dev.gpu}): smoothmax(smoothmax(memory {dev.bytes_read / GB:.3g} GB / "
            f"({dev.memory_efficiency:.3f} × {dev.bandwidth_bytes_per_s / GB:.4g} GB/s) = {_ms(dev.memory_s)}, "
            f"ALU {_ms(dev.alu_s)}, compute {_ms(dev.compute_s)}){attention}, launches {_ms(dev.launch_s)})"
            + (f" + per-layer syncs and expert calls {_ms(dev.serial_s)}" if dev.serial_s else "")
            + f" = {_ms(dev.total_s)}; "
        )
    parts = [f"{len(work.stages)} stage(s) in series {_ms(step.gpus_s)}"]
    if step.comm_s:
        parts.append(f"all-reduce {_ms(step.comm_s)}")
    if step.hops_s:
        parts.append(f"hops {_ms(step.hops_s)}")
    if step.host_s:
        parts.append(f"host layers {_ms(step.host_s)}")
    if step.overhead_s:
        parts.append(f"step overhead {_ms(step.overhead_s)}")
    return (
        f"1 / mean step over {workload.output_tokens} output tokens (context {workload.prompt_tokens}→"
        f"{workload.prompt_tokens + workload.output_tokens}); at mid context: {gpu_text}step = "
        + " + ".join(parts)
        + f" = {_ms(step.total_s)}; mean step {_ms(mean_s)} → {1 / mean_s:.4g} tok/s per sequence [{label}]"
    )


def _prefill_text(pf: Prefill, workload: SpeedWorkload, label: str) -> str:
    first = pf.first
    detail = ""
    if first is not None:
        detail = (
            f"; first micro-batch on the first GPU: matmuls {_ms(first.matmul_s)} + dequant {_ms(first.dequant_s)}"
            f" + attention {_ms(first.attention_s)} + activations {_ms(first.activation_s)}"
            f" + overhead {_ms(first.overhead_s)} + all-reduce {_ms(first.comm_s)}"
        )
    mode = "pipelined across GPUs" if pf.pipelined else "GPUs in series"
    host = f", host layers {_ms(pf.host_s)}" if pf.host_s else ""
    if pf.build_speedup != 1.0:
        host += f", build b{pf.build} prompt kernels ×{pf.build_speedup:.2f} vs b{BUILD_ERA_REFERENCE}"
    return (
        f"{workload.prompt_tokens} tokens × {workload.batch} in {pf.micro_batches} micro-batch(es), {mode}"
        f"{host}: {_ms(pf.total_s * workload.batch)}{detail} [{label}]"
    )


def predict(
    profile: EngineProfile,
    model: Model,
    rig: Rig,
    memory: MemoryEstimate,
    workload: SpeedWorkload,
    link: Link,
    *,
    host_memory_bandwidth_gb_per_s: float | None = None,
    engine_family: str = LLAMA_CPP,
    quant: Quant | None = None,
) -> tuple[tuple[float, Step] | None, Prefill | None, ForwardWork]:
    """Raw decode (mean step, mid step) and prefill of one workload under ``profile``.

    The calibration fit calls this directly with trial profiles.
    """
    assert quant is not None
    params, behaviour = profile.parameters, profile.behaviour
    work = forward_work(model, quant, memory.placement, honors_window(model, engine_family))
    topo = _topology(rig, work, link, behaviour, host_memory_bandwidth_gb_per_s)
    kv_bytes = _kv_element_bytes(model, memory, workload)
    hops = engine_family != VLLM  # sequential engines hop with the fitted cost; vLLM-class PP copies
    decode = None
    if workload.output_tokens > 0:
        decode = average_step(
            params,
            behaviour,
            work,
            model,
            kv_bytes,
            workload.prompt_tokens,
            workload.output_tokens,
            workload.batch,
            topo,
            layer_split_hops=hops,
        )
    prefill = None
    if workload.prompt_tokens > 0:
        prefill = prefill_time(
            params, behaviour, work, model, workload.prompt_tokens, topo, layer_split_hops=hops, depth=workload.depth
        )
    return decode, prefill, work


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
    profiles: Mapping[str, EngineProfile] | None = None,
    profile: EngineProfile | None = None,
    settings: SpeedSettings | None = None,
    serving_profiles: Mapping[str, ServingProfile] | None = None,
) -> SpeedEstimate:
    """Decode and prefill speed of ``model`` on ``rig`` with ranges and the profile used.

    >>> from rigplan.estimate import estimate
    >>> s = estimate("llama-3-8b", "rtx-4090", quant="q4_k_m", prompt_tokens=0, output_tokens=512).speed
    >>> 100 < s.decode_tokens_per_s < 160, s.prefill_tokens_per_s is None
    (True, True)

    Args:
        user_profile: a :class:`UserCorrection` from ``rigplan calibrate`` (ignored unless it
            matches the engine and GPUs).
        profiles: engine profiles by name (``rigplan.calibration.load.load_profiles()``, read
            at the API's edge).
        profile: use exactly this profile (the calibration fit passes trial profiles).
        settings: engine build, backend and flash attention (None: the newest profile, the
            GPU vendor's backend and the build's defaults).
        serving_profiles: batch-serving profiles by engine id; vLLM-class engines use them
            (``rigplan.calibration.serving_load.load_serving_profiles()``).
    """
    if serving_profiles and engine.family == VLLM and engine.id in serving_profiles and profile is None:
        return _serving_estimate(serving_profiles[engine.id], model, quant, rig, memory, workload, link)
    choice = resolve_profile(profiles, profile, engine, rig, settings)
    profile = with_settings(choice.profile, settings)
    decode, prefill, work = predict(
        profile,
        model,
        rig,
        memory,
        workload,
        link,
        host_memory_bandwidth_gb_per_s=host_memory_bandwidth_gb_per_s,
        engine_family=engine.family,
        quant=quant,
    )
    reasons, widen, extrapolation = extrapolation_of(profile, choice, engine, rig, model, work, workload)
    r = ranges_for(profile, model, engine, rig, user_profile, widen, reasons, extrapolation)
    return _speed_estimate(decode, prefill, workload, work, r, choice, profile, tuple(reasons), extrapolation)


def _speed_estimate(
    decode: tuple[float, Step] | None,
    prefill: Prefill | None,
    workload: SpeedWorkload,
    work: ForwardWork,
    r: Ranges,
    choice: ProfileChoice,
    profile: EngineProfile,
    reasons: tuple[str, ...],
    extrapolation: str,
) -> SpeedEstimate:
    """The :class:`SpeedEstimate` of one predicted decode step and prompt, with its derivations."""
    derivations: dict[str, str] = {}
    step_s, decode_tps, decode_range, throughput = _decode_rates(decode, workload, work, r, derivations)
    prefill_s, prefill_tps, prefill_range = _prefill_rates(prefill, workload, r, derivations)
    ttft = prefill_s if prefill_s is not None else step_s
    if prefill_s is None and step_s is not None:
        derivations["ttft_s"] = f"no prompt: one decode step = {_ms(step_s)}"
    return SpeedEstimate(
        decode_tokens_per_s=_finite(decode_tps),
        decode_tokens_per_s_range=decode_range,
        decode_throughput_tokens_per_s=_finite(throughput),
        prefill_tokens_per_s=_finite(prefill_tps),
        prefill_tokens_per_s_range=prefill_range,
        ttft_s=_finite(ttft),
        engine_profile=r.label,
        calibrated_on_user_results=r.user,
        derivations=derivations,
        decode_step_s=step_s,
        prefill_s=prefill_s,
        off_data=reasons,
        extrapolation=extrapolation,
        warnings=choice.warnings,
        flash_attention=profile.behaviour.flash_attention,
        backend=choice.backend,
    )


Rates = tuple[float | None, float | None, tuple[float, float] | None]


def _decode_rates(
    decode: tuple[float, Step] | None, workload: SpeedWorkload, work: ForwardWork, r: Ranges, out: dict[str, str]
) -> tuple[float | None, float | None, tuple[float, float] | None, float | None]:
    """(step seconds, tokens/s, range, batch throughput) of decode; derivations into ``out``."""
    if decode is None:
        return None, None, None, None
    step_s = decode[0] / r.decode_factor
    tps = 1.0 / step_s
    out["decode_tokens_per_s"] = _decode_text(decode[1], decode[0], workload, work, r.label)
    out["decode_throughput_tokens_per_s"] = f"batch {workload.batch} / step {_ms(step_s)}"
    out["decode_tokens_per_s_range"] = r.text("decode")
    return step_s, tps, speed_range(tps, r.decode_spread, r.decode_widen), workload.batch / step_s


def _prefill_rates(prefill: Prefill | None, workload: SpeedWorkload, r: Ranges, out: dict[str, str]) -> Rates:
    """(seconds, tokens/s, range) of the prompts' prefill; derivations into ``out``."""
    if prefill is None or prefill.total_s <= 0:
        return None, None, None
    seconds = prefill.total_s * workload.batch / r.prefill_factor
    tps = workload.prompt_tokens * workload.batch / seconds
    out["prefill_tokens_per_s"] = _prefill_text(prefill, workload, r.label)
    out["prefill_tokens_per_s_range"] = r.text("prefill")
    out["ttft_s"] = f"prefill of {workload.batch} prompt(s) of {workload.prompt_tokens} tokens = {seconds:.4g} s"
    return seconds, tps, speed_range(tps, r.prefill_spread, r.prefill_widen)


def _serving_estimate(
    profile: ServingProfile,
    model: Model,
    quant: Quant,
    rig: Rig,
    memory: MemoryEstimate,
    workload: SpeedWorkload,
    link: Link,
) -> SpeedEstimate:
    """A vLLM-class engine's speed from the batch-serving model (:mod:`.serving`)."""
    work = forward_work(model, quant, memory.placement, honors_window(model, VLLM))
    links = serving.link_models(rig, work, link.kind, link.lanes, link.p2p, profile.behaviour.custom_all_reduce)
    s = serving.serving_speed(
        profile,
        model,
        quant,
        rig,
        work,
        links,
        _kv_element_bytes(model, memory, workload),
        batch=workload.batch,
        prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens,
    )
    throughput = s.decode_tokens_per_s * workload.batch if s.decode_tokens_per_s else None
    derivations = dict(s.derivations)
    if s.decode_step_s:
        derivations["decode_throughput_tokens_per_s"] = f"batch {workload.batch} / step {_ms(s.decode_step_s)}"
    return SpeedEstimate(
        decode_tokens_per_s=_finite(s.decode_tokens_per_s),
        decode_tokens_per_s_range=s.decode_range,
        decode_throughput_tokens_per_s=_finite(throughput),
        prefill_tokens_per_s=_finite(s.prefill_tokens_per_s),
        prefill_tokens_per_s_range=s.prefill_range,
        ttft_s=_finite(s.ttft_s),
        engine_profile=s.label,
        derivations=derivations,
        decode_step_s=s.decode_step_s,
        prefill_s=s.prefill_s,
        off_data=s.reasons,
        batch=workload.batch,
        output_throughput_tokens_per_s=_finite(s.output_throughput_tokens_per_s),
        output_throughput_tokens_per_s_range=s.output_throughput_range,
    )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


__all__ = [
    "EngineBehaviour",
    "EngineProfile",
    "Link",
    "ServingProfile",
    "SpeedEstimate",
    "SpeedParameters",
    "SpeedSettings",
    "SpeedWorkload",
    "Spread",
    "UserCorrection",
    "estimate_speed",
    "predict",
    "select_profile",
    "step_time",
    "with_settings",
]
