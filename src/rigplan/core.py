"""The pure core: ``evaluate(request, context) -> Estimate``.

Everything an estimate needs arrives as arguments: the request (model and rig already
resolved by :mod:`rigplan.edge`) and a :class:`Context` holding the catalogue, the engine
profiles and the user's calibration, loaded once.  Nothing here reads a file, the network,
the environment or the clock, so the same inputs give the same answer on every machine.

>>> from rigplan.edge import inference_request, load_context
>>> ctx = load_context(use_user_calibration=False)
>>> evaluate(inference_request("llama-3-8b", "rtx-4090", catalog=ctx.catalog), ctx).quant.id
'q4_k_m'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import arch
from .backends import check_backend, default_backend, parse_build
from .catalog.records import Catalog, Model
from .catalog.support import SupportRule
from .engines import LLAMA_CPP, VLLM, Engine, get_engine
from .errors import InvalidValueError, UnsupportedError
from .expert_offload import with_experts_in_ram
from .memory import MemoryEstimate, Workload, estimate_memory
from .placement import place
from .power import estimate_power
from .quant import Quant, engine_supports, resolve_quant
from .requests import BATCH_MAX, InferenceRequest, TrainingRequest
from .results import Estimate, Provenance
from .rig import Rig
from .speed import (
    DESKTOP_HOST_BANDWIDTH_GB_PER_S,
    SERVER_HOST_BANDWIDTH_GB_PER_S,
    Link,
    SpeedEstimate,
    SpeedWorkload,
    estimate_speed,
)
from .speed.batch import ServingProfile
from .speed.comm import XGMI, infinity_fabric
from .speed.profile import EngineProfile, UserCorrection
from .speed.settings import SpeedSettings
from .support import check_support
from .units import GIB

if TYPE_CHECKING:
    from .training.result import TrainingEstimate

# gpu_layers="auto" leaves this much of each GPU free when it has to offload: the CUDA context
# and allocator slack beyond llama.cpp's logged buffers vary by driver (0.1–0.5 GiB); packing a
# GPU to the last MiB would fail on some machines.
AUTO_GPU_LAYERS_HEADROOM_BYTES = 512 * 2**20


@dataclass(frozen=True, slots=True)
class Context:
    """What the core knows beyond the request: loaded once at the edge, never read here."""

    catalog: Catalog
    profiles: Mapping[str, EngineProfile]
    user_corrections: tuple[UserCorrection, ...] = ()
    #: The engine × hardware table (catalog/data/engine_support.toml).
    support_rules: tuple[SupportRule, ...] = ()
    #: Batch-serving profiles by engine id (vLLM, SGLang, TensorRT-LLM).
    serving_profiles: Mapping[str, ServingProfile] = field(default_factory=dict)


def user_correction_for(
    corrections: Sequence[UserCorrection], engine: Engine, gpu_ids: Sequence[str]
) -> UserCorrection | None:
    """The user's correction for this engine on these GPUs, or None (ollama shares llama.cpp's)."""
    key = LLAMA_CPP if engine.family == LLAMA_CPP else engine.id
    for c in corrections:
        if c.engine == key and set(gpu_ids) <= set(c.gpus):
            return c
    return None


def default_link(rig: Rig, link: str | None, lanes: int | None) -> Link:
    """The best link the rig's GPUs have without a bridge (SXM parts: NVLink; AMD OAM modules:
    Infinity Fabric)."""
    lanes = 16 if lanes is None else lanes
    gpus = rig.gpus
    p2p = all(g.p2p_stock_driver for g in gpus)
    if infinity_fabric(gpus) and link != "nvlink":
        return Link(XGMI, lanes, True)  # OAM modules talk over Infinity Fabric whatever PCIe is named
    if link == XGMI:
        raise UnsupportedError(
            f"link xgmi: only AMD Instinct OAM modules on one baseboard are joined by Infinity Fabric, "
            f"not {rig.describe()}"
        )
    if link is None:
        if all(g.nvlink == "sxm" for g in gpus):
            return Link("nvlink", lanes, True)
        gens = [g.pcie_generation for g in gpus if g.pcie_generation]
        return Link(f"pcie{min(gens)}" if gens else "pcie4", lanes, p2p)
    if link == "nvlink":
        no_nvlink = sorted({g.id for g in gpus if g.nvlink == "none"})
        if no_nvlink:
            raise UnsupportedError(f"link nvlink: {', '.join(no_nvlink)} has no NVLink")
        if len(gpus) > 1 and any(g.nvlink == "bridge" and (g.nvlink_max_gpus or 2) < len(gpus) for g in gpus):
            raise UnsupportedError(
                f"link nvlink: an NVLink bridge joins at most {gpus[0].nvlink_max_gpus or 2} "
                f"{gpus[0].id} cards, the rig has {len(gpus)}"
            )
        return Link("nvlink", lanes, True)
    return Link(link, lanes, p2p)


def _engine_settings(request: InferenceRequest, engine: Engine, rig: Rig) -> SpeedSettings:
    """The request's build / backend / flash attention, validated; llama.cpp gets the GPU
    vendor's backend when none is named (other engines keep None)."""
    backend = check_backend(request.backend)
    if engine.family == LLAMA_CPP:
        parse_build(request.engine_version)  # refuses what is not a build number
        backend = backend or default_backend(rig.gpus)
    return SpeedSettings(request.engine_version, backend, request.flash_attention)


def _check_request(request: InferenceRequest, model: Model) -> int:
    """The context in tokens, after the checks that need the model."""
    arch.check_supported(model)
    ctx = request.resolved_context
    if ctx > model.max_context and not request.force:
        raise InvalidValueError(
            "context", f"{ctx} exceeds {model.id}'s maximum of {model.max_context} tokens (--force to allow)"
        )
    return ctx


def _quant_and_kv(request: InferenceRequest, engine: Engine, rig: Rig) -> tuple[Quant, str]:
    q = resolve_quant(request.quant, engine.id, gpu_has_fp8=all(g.has_fp8 for g in rig.gpus), model=request.model)
    if not engine_supports(q, engine.id):
        raise UnsupportedError(f"{engine.name} cannot run quant {q.id}")
    kv = request.kv_dtype or engine.default_kv_dtype
    if kv not in engine.kv_dtypes:
        raise InvalidValueError("kv_dtype", f"{engine.name} offers {', '.join(engine.kv_dtypes)}, not {kv!r}")
    return q, kv


def _memory(request: InferenceRequest, engine: Engine, quant: Quant, workload: Workload) -> MemoryEstimate:
    """Memory of the placement ``gpu_layers`` asks for ("auto": the most layers that fit)."""
    model, rig = request.model, request.rig
    # RAM is sold in JEDEC units: a "64 GB" kit holds 64 GiB.
    host_limit = None if request.host_ram_gb is None else int(request.host_ram_gb * GIB)

    def memory_for(layers: int | None) -> MemoryEstimate:
        placement = place(
            model,
            rig,
            engine,
            split=request.split,
            tensor_parallel=request.tensor_parallel,
            pipeline_parallel=request.pipeline_parallel,
            gpu_layers=layers,
        )
        return estimate_memory(
            model, quant, engine, placement, workload, file_weights=request.file_weights, host_limit_bytes=host_limit
        )

    gpu_layers = request.gpu_layers
    if gpu_layers is None and engine.id == "ollama":
        gpu_layers = "auto"  # Ollama sets num_gpu from free memory and offloads the rest by default
    if gpu_layers == "auto":
        mem = memory_for(None)  # engines that cannot offload treat "auto" as every layer
        if engine.offloads_layers and not all(d.fits for d in mem.devices):
            mem = _most_layers_that_fit(memory_for, model.num_layers)
        return mem
    assert not isinstance(gpu_layers, str)  # the request allows no other word
    if gpu_layers is not None and gpu_layers <= model.num_layers and not engine.offloads_layers:
        raise UnsupportedError(
            f"{engine.name} keeps every layer on the GPUs; gpu_layers needs llama.cpp or transformers"
        )
    return memory_for(gpu_layers)


def _most_layers_that_fit(memory_for: Callable[[int], MemoryEstimate], num_layers: int) -> MemoryEstimate:
    """The placement with the most layers on the GPUs that still fits them (bisection: GPU
    memory only grows with layers; ``-ngl`` counts the output head as one more)."""
    low, high = 0, num_layers  # n = num_layers + 1 (everything) is known not to fit
    while low < high:
        mid = (low + high + 1) // 2
        if all(d.total_bytes + AUTO_GPU_LAYERS_HEADROOM_BYTES <= d.usable_bytes for d in memory_for(mid).devices):
            low = mid
        else:
            high = mid - 1
    return memory_for(low)


def max_batch(
    mem: MemoryEstimate, engine: Engine, rig: Rig, serving: ServingProfile | None, tokens_per_sequence: int
) -> int:
    """``batch="max"``: the largest batch the KV pool holds at ``tokens_per_sequence`` each,
    capped by the engine's default max_num_seqs (at least 1: a pool too small for one does not
    fit, and the estimate says so).

    The caller passes prompt + output tokens: what TensorRT-LLM's default capacity policy,
    GUARANTEED_NO_EVICT, reserves for every request it admits ("Reserve blocks for requests to
    complete without eviction": NVIDIA/TensorRT-LLM cpp/tensorrt_llm/batch_manager/
    capacityScheduler.cpp, tensorrt_llm/_torch/pyexecutor/scheduler.py GuaranteedNoEvictPolicy;
    trtllm-bench prints "Capacity Scheduler Policy: GUARANTEED_NO_EVICT").  vLLM V1 allocates
    blocks as tokens arrive and preempts the newest request (recompute) when the pool runs out
    (vllm/v1/core/sched/scheduler.py); SGLang admits against prompt + new_token_ratio ×
    max_new_tokens (SGLANG_INIT_NEW_TOKEN_RATIO 0.7, decaying) and retracts decodes when memory
    runs out.  Both run more than pool / (prompt + output) sequences for a while, paid for in
    recompute; their rows give no sign that they gain by it (vLLM's long-output offline rows
    already read ~15 % high), so all three use the no-evict batch.

    Raises:
        UnsupportedError: an engine without a KV pool and a serving profile.
    """
    if engine.family != VLLM or serving is None or mem.kv_pool_tokens is None:
        raise UnsupportedError(
            f"batch 'max' needs a vLLM-class engine with a KV pool (vllm, sglang, tensorrt-llm), not {engine.name}"
        )
    cap = min(serving.behaviour.max_num_seqs(g) for g in rig.gpus)
    return max(1, min(cap, mem.kv_pool_tokens // max(tokens_per_sequence, 1)))


def evaluate(request: InferenceRequest, context: Context) -> Estimate:
    """Memory, speed and power of ``request.model`` on ``request.rig``: the pure core of
    :func:`rigplan.estimate`.

    Raises:
        RigplanError: an unknown engine or quant, impossible values, unsupported layouts.
    """
    model, rig = request.model, request.rig
    ctx = _check_request(request, model)
    engine = get_engine(request.engine)
    settings = _engine_settings(request, engine, rig)
    quant, kv = _quant_and_kv(request, engine, rig)
    warnings = check_support(context.support_rules, engine.id, rig.gpus, quant.id, settings.backend, moe=model.is_moe)
    link = default_link(rig, request.link, request.lanes)
    batch = 1 if request.batch == BATCH_MAX else int(request.batch)
    workload = Workload(context=ctx, batch=batch, prompt_tokens=request.prompt_tokens, kv_dtype=kv)
    mem = _memory(request, engine, quant, workload)
    if request.batch == BATCH_MAX:
        serving = context.serving_profiles.get(engine.id)
        batch = max_batch(mem, engine, rig, serving, request.prompt_tokens + request.output_tokens)
        workload = Workload(context=ctx, batch=batch, prompt_tokens=request.prompt_tokens, kv_dtype=kv)
        mem = _memory(request, engine, quant, workload)
    user = None
    if request.use_user_calibration:
        user = user_correction_for(context.user_corrections, engine, [g.id for g in rig.gpus])
    speed = estimate_speed(
        model,
        quant,
        engine,
        rig,
        mem,
        SpeedWorkload(request.prompt_tokens, request.output_tokens, ctx, batch, kv),
        link,
        host_memory_bandwidth_gb_per_s=request.host_memory_bandwidth_gb_per_s,
        user_profile=user,
        profiles=context.profiles,
        settings=settings,
        serving_profiles=context.serving_profiles,
    )
    est = Estimate(
        model=model,
        rig=rig,
        engine=engine,
        quant=quant,
        workload=workload,
        output_tokens=request.output_tokens,
        memory=mem,
        speed=speed,
        power=estimate_power(rig, mem, speed, batch=batch),
        link=link,
        provenance=_provenance(model, rig, engine, quant, speed),
        warnings=tuple(warnings) + speed.warnings,
    )
    return _experts_in_ram(est, request) if engine.id == LLAMA_CPP and request.gpu_layers == "auto" else est


def _experts_in_ram(est: Estimate, request: InferenceRequest) -> Estimate:
    """llama.cpp's ``auto`` offload of a MoE model: the ``-ncmoe`` layout (experts in RAM, the
    rest on the GPU) the plans use, not whole layers (:func:`rigplan.expert_offload.with_experts_in_ram`;
    the host bandwidth defaults as in the speed model)."""
    bandwidth = request.host_memory_bandwidth_gb_per_s
    if bandwidth is None:
        server = any(g.gpu_class == "datacenter" for g in est.rig.gpus)
        bandwidth = SERVER_HOST_BANDWIDTH_GB_PER_S if server else DESKTOP_HOST_BANDWIDTH_GB_PER_S
    moe = with_experts_in_ram(est, bandwidth)
    if moe is est:
        return est
    return replace(moe, warnings=(*est.warnings, moe.speed.warnings[-1]))


def evaluate_training(request: TrainingRequest, context: Context) -> TrainingEstimate:
    """The training twin of :func:`evaluate`: a :class:`rigplan.TrainingEstimate`.

    The request's model and rig are resolved already; the training model
    (:func:`rigplan.training.evaluate.estimate_training_for`) reads its own fitted profiles
    (package data, cached); ``framework`` picks the framework profile (None: the default for
    the layout, named in the result).

    Raises:
        InvalidValueError: a setting that is not an option of a training estimate (the nearest
            one suggested), or an impossible value.
    """
    # lazy: training/cost.py imports planner.costing, and the planner package imports this module
    from .training.evaluate import estimate_training_for
    from .training.settings import TrainingSettings

    settings = TrainingSettings.from_mapping(
        {**request.settings, "framework": request.framework, "force": request.force}
    )
    return estimate_training_for(request.model, request.rig, settings, context.catalog)


def _provenance(model: Model, rig: Rig, engine: Engine, quant: Quant, speed: SpeedEstimate) -> dict[str, Provenance]:
    gpu_sources = "; ".join(sorted({f"{g.id}: {g.source} (as of {g.as_of})" for g in rig.gpus}))
    prov = {
        "memory.weights_bytes": Provenance(
            "formula",
            f"{model.id}: {model.source}",
            f"Σ tensors of {model.id} × bytes per weight of {quant.id} (per-tensor types)",
        ),
        "memory.per_gpu.capacity_bytes": Provenance("catalogue", gpu_sources),
        "memory.per_gpu.usable_bytes": Provenance(
            "formula",
            engine.source,
            "capacity × gpu_memory_utilization" if engine.memory_utilization else "capacity",
        ),
        "memory.per_gpu.kv_cache_bytes": Provenance(
            "formula",
            "KV = 2 · L · n_kv · d_head · bytes · tokens (MLA: (d_c + d_rope) · L); perf-model.md §1.3",
            "Σ layers kv_elements_per_token × tokens × kv bytes / TP share",
        ),
        "memory.per_gpu.activations_bytes": Provenance(
            "estimate",
            "llama.cpp compute-buffer model fitted to llama.cpp allocation logs"
            if engine.family != VLLM
            else "peak of vLLM's profiling run, fitted to vLLM start-up logs (memory/serving.py)",
        ),
        "memory.per_gpu.overhead_bytes": Provenance(
            "estimate",
            "CUDA context / NCCL constants (memory/buffers.py)"
            if engine.family != VLLM
            else "non-torch memory (NCCL, all-reduce buffers) from vLLM start-up logs (memory/serving.py)",
        ),
        "memory.host_bytes": Provenance("formula", "token embeddings + offloaded layers + host buffers"),
        "power.board_watts": Provenance("catalogue", gpu_sources),
        "power.draw_watts": Provenance(
            "estimate", "share of board power by phase and batch (power.py, perf-model.md §8.1)"
        ),
        "power.psu_watts": Provenance(
            "formula", "Intel ATX 3.0 sizing + ATX 3.x transient tolerance, standard PSU sizes (power.py)"
        ),
    }
    for key, text in speed.derivations.items():
        kind = "user-calibrated" if speed.calibrated_on_user_results else "estimate"
        prov[f"speed.{key}"] = Provenance(kind, speed.engine_profile, text)
    return prov
