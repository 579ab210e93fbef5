"""``rigplan.estimate``: memory, speed and power of one model on one rig, as one record.

This is the public entry point the CLI and the web app call.  It resolves names, checks the
inputs, then calls the pure models (placement → memory → speed → power).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import arch
from .calibration.load import load_profiles
from .catalog import load_catalog
from .catalog.load import build_record
from .catalog.records import Catalog, Model
from .engines import VLLM, Engine, get_engine
from .errors import InvalidValueError, UnsupportedError
from .memory import MemoryEstimate, Workload, estimate_memory
from .placement import place
from .power import PowerEstimate, estimate_power
from .quant import Quant, engine_supports, resolve_quant
from .rig import Rig, parse_rig, resolve_model
from .speed import Link, SpeedEstimate, SpeedWorkload, estimate_speed
from .units import GIB

LINKS = ("nvlink", "pcie3", "pcie4", "pcie5")
# vLLM, SGLang and TensorRT-LLM need CUDA compute capability ≥ 7.0 (vLLM installation docs:
# "GPU: compute capability 7.0 or higher"); Pascal cards such as the Tesla P40 are 6.1.
ENGINE_MIN_ARCH = {VLLM: ("pascal",)}
# gpu_layers="auto" leaves this much of each GPU free when it has to offload: the CUDA context
# and allocator slack beyond llama.cpp's logged buffers vary by driver (0.1–0.5 GiB); packing a
# GPU to the last MiB would fail on some machines.
AUTO_GPU_LAYERS_HEADROOM_BYTES = 512 * 2**20
LANES = (16, 8, 4)


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

    @property
    def fits(self) -> bool:
        return self.memory.fits

    def to_dict(self) -> dict[str, Any]:
        """The nested JSON of design.md §3 (bytes as integers)."""
        m, s, p = self.memory, self.speed, self.power
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
            "split": m.placement.split,
            "tensor_parallel": m.placement.tensor_parallel,
            "pipeline_parallel": m.placement.pipeline_parallel,
            "link": {"kind": self.link.kind, "lanes": self.link.lanes, "p2p": self.link.p2p},
            "memory": {
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
            },
            "speed": {
                "decode_tokens_per_s": s.decode_tokens_per_s,
                "decode_tokens_per_s_range": list(s.decode_tokens_per_s_range) if s.decode_tokens_per_s_range else None,
                "decode_throughput_tokens_per_s": s.decode_throughput_tokens_per_s,
                "prefill_tokens_per_s": s.prefill_tokens_per_s,
                "prefill_tokens_per_s_range": list(s.prefill_tokens_per_s_range)
                if s.prefill_tokens_per_s_range
                else None,
                "ttft_s": s.ttft_s,
                "engine_profile": s.engine_profile,
                "calibrated_on_user_results": s.calibrated_on_user_results,
                "range_widened_for": list(s.off_data),
            },
            "power": p.to_dict(),
            "provenance": {
                k: {"kind": v.kind, "source": v.source, **({"formula": v.formula} if v.formula else {})}
                for k, v in sorted(self.provenance.items())
            },
        }


def model_from_fields(fields: Mapping[str, Any]) -> Model:
    """A :class:`Model` from a dict of architecture fields (unknown keys are refused)."""
    defaults = {
        "id": "custom",
        "name": "custom model",
        "family": "custom",
        "hf_repo": "",
        "architecture": "LlamaForCausalLM",
        "tie_embeddings": False,
        "max_context": 131072,
        "published_param_count": 0,
        "source": "user-supplied fields",
        "as_of": None,
    }
    import datetime as dt

    row = {**defaults, **dict(fields)}
    row["as_of"] = row["as_of"] or dt.date.today()
    if "num_kv_heads" not in row and "num_heads" in row:
        row["num_kv_heads"] = row["num_heads"]
    model = build_record(Model, row, path="model", where="fields")
    arch.check_shapes(model)  # before counting: a corrupt layer count must not enumerate tensors
    if model.published_param_count == 0:
        model = _replace_params(model)
    return model


def _replace_params(model: Model) -> Model:
    import dataclasses

    return dataclasses.replace(model, published_param_count=arch.count_parameters(model))


def resolve_model_input(model: str | Mapping[str, Any] | Model, catalog: Catalog) -> Model:
    """Catalogue id (wins over a same-named path), dict of fields, or a Model record."""
    if isinstance(model, Model):
        return arch.check_shapes(model)
    if isinstance(model, Mapping):
        return arch.check_shapes(model_from_fields(model))
    if not isinstance(model, str) or not model.strip():
        raise InvalidValueError("model", f"must be a model id, a path, a repo id or a dict of fields, got {model!r}")
    try:
        return resolve_model(model, catalog)
    except LookupError:
        from .integrations.sources import load_model_source

        found = load_model_source(model)
        if found is None:
            raise
        return arch.check_shapes(found)


def resolve_rig_input(rig: str | Rig, catalog: Catalog, network: str | None = None) -> Rig:
    """A rig string (or "local": the GPUs NVML finds here) or a :class:`Rig`."""
    if isinstance(rig, Rig):
        return rig
    if not isinstance(rig, str):
        raise InvalidValueError("rig", f"must be a rig string such as '2x rtx-4090', got {rig!r}")
    if rig.strip().lower() == "local":
        from .integrations.nvml import detect_rig

        return detect_rig(catalog)
    return parse_rig(rig, catalog, **({"network": network} if network else {}))


def default_link(rig: Rig, link: str | None, lanes: int | None) -> Link:
    """The best link the rig's GPUs have without a bridge (SXM parts: NVLink)."""
    lanes = 16 if lanes is None else lanes
    if lanes not in LANES:
        raise InvalidValueError("lanes", f"must be one of {', '.join(map(str, LANES))}, got {lanes}")
    gpus = rig.gpus
    p2p = all(g.p2p_stock_driver for g in gpus)
    if link is None:
        if all(g.nvlink == "sxm" for g in gpus):
            return Link("nvlink", lanes, True)
        gens = [g.pcie_generation for g in gpus if g.pcie_generation]
        return Link(f"pcie{min(gens)}" if gens else "pcie4", lanes, p2p)
    if link not in LINKS:
        raise InvalidValueError("link", f"must be one of {', '.join(LINKS)}, got {link!r}")
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


def check_number(name: str, value: Any, *, minimum: float, integer: bool = False) -> None:
    """Refuse a value that is not a (whole, finite) number of at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < minimum:
        what = "a whole number" if integer else "a number"
        raise InvalidValueError(name, f"must be {what} ≥ {minimum:g}, got {value!r}")


def _check_tokens(prompt_tokens: int, output_tokens: int, context: int | None, batch: int) -> int:
    for name, value in (("prompt_tokens", prompt_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidValueError(name, f"must be a whole number ≥ 0, got {value!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidValueError("batch", f"must be a whole number ≥ 1, got {batch!r}")
    needed = prompt_tokens + output_tokens
    if context is None:
        context = needed
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise InvalidValueError("context", f"must be a whole number ≥ 1, got {context!r}")
    if context < needed:
        raise InvalidValueError("context", f"{context} is smaller than prompt_tokens + output_tokens = {needed}")
    return context


def check_vendors(rig: Rig, eng: Engine) -> None:
    """Refuse a rig that mixes GPU vendors on an engine that cannot span them.

    One CUDA or ROCm process sees one vendor's GPUs; llama.cpp can span NVIDIA and AMD cards with
    its Vulkan backend (or RPC between a CUDA and a ROCm build), so it is allowed there.

    Raises:
        UnsupportedError: with the reason.
    """
    vendors = sorted({g.vendor for g in rig.gpus})
    if len(vendors) > 1 and eng.family != "llama.cpp":
        raise UnsupportedError(
            f"{eng.name} runs one vendor's GPUs per process ({' + '.join(vendors)} given); "
            "llama.cpp can span them with its Vulkan backend or RPC"
        )


def estimate(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    quant: str | None = None,
    engine: str = "llama.cpp",
    context: int | None = None,
    batch: int = 1,
    prompt_tokens: int = 512,
    output_tokens: int = 128,
    kv_dtype: str | None = None,
    split: str | None = None,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    gpu_layers: int | str | None = None,
    link: str | None = None,
    lanes: int | None = None,
    host_ram_gb: float | None = None,
    use_user_calibration: bool = True,
    network: str | None = None,
    host_memory_bandwidth_gb_per_s: float | None = None,
    force: bool = False,
    catalog: Catalog | None = None,
) -> Estimate:
    """Estimate memory, speed and power of ``model`` on ``rig``.

    >>> e = estimate("llama-3-8b", "rtx-4090")
    >>> e.fits, e.quant.id
    (True, 'q4_k_m')

    Args:
        model: catalogue id, a path or Hugging Face repo id, a dict of architecture fields.
        rig: rig string ("2x rtx-4090", "2 nodes x 8x h100-sxm") or "local".
        quant: quant id or "4bit"/"8bit"/"16bit"; None = the engine's default.
        gpu_layers: None = every layer on GPUs; "auto" = as many as fit; an int = that many.

    Raises:
        RigplanError: unknown names (with suggestions), impossible values, unsupported layouts.
    """
    catalog = catalog or load_catalog()
    for name, text in (
        ("quant", quant),
        ("kv_dtype", kv_dtype),
        ("split", split),
        ("link", link),
        ("network", network),
    ):
        if text is not None and not isinstance(text, str):
            raise InvalidValueError(name, f"must be a name, got {text!r}")
    if not isinstance(engine, str):
        raise InvalidValueError("engine", f"must be an engine id, got {engine!r}")
    for name, number in (("tensor_parallel", tensor_parallel), ("pipeline_parallel", pipeline_parallel)):
        if number is not None:
            check_number(name, number, minimum=1, integer=True)
    if host_ram_gb is not None:
        check_number("host_ram_gb", host_ram_gb, minimum=0)
    if host_memory_bandwidth_gb_per_s is not None:
        check_number("host_memory_bandwidth_gb_per_s", host_memory_bandwidth_gb_per_s, minimum=1)
    mdl = resolve_model_input(model, catalog)
    from_file = isinstance(model, str) and mdl.id not in catalog.models
    if from_file and quant is None:
        from .integrations.sources import source_quant

        quant = source_quant(str(model))  # the file's own format: a GGUF's type, a GPTQ folder's int4
    arch.check_supported(mdl)
    the_rig = resolve_rig_input(rig, catalog, network)
    eng = get_engine(engine)
    ctx = _check_tokens(prompt_tokens, output_tokens, context, batch)
    if ctx > mdl.max_context and not force:
        raise InvalidValueError(
            "context", f"{ctx} exceeds {mdl.id}'s maximum of {mdl.max_context} tokens (--force to allow)"
        )
    if any(g.is_apple for g in the_rig.gpus) and not eng.runs_on_apple:
        raise UnsupportedError(f"{eng.name} does not run on Apple silicon; use llama.cpp")
    check_vendors(the_rig, eng)
    old = sorted({g.id for g in the_rig.gpus if g.architecture in ENGINE_MIN_ARCH.get(eng.family, ())})
    if old:
        raise UnsupportedError(f"{eng.name} needs compute capability 7.0 or newer; {', '.join(old)} is older")
    q = resolve_quant(quant, eng.id, gpu_has_fp8=all(g.has_fp8 for g in the_rig.gpus), model=mdl)
    if not engine_supports(q, eng.id):
        raise UnsupportedError(f"{eng.name} cannot run quant {q.id}")
    kv = kv_dtype or eng.default_kv_dtype
    if kv not in eng.kv_dtypes:
        raise InvalidValueError("kv_dtype", f"{eng.name} offers {', '.join(eng.kv_dtypes)}, not {kv!r}")
    the_link = default_link(the_rig, link, lanes)
    file_weights = None
    if from_file:
        from .integrations.sources import file_weights as read_file_weights

        file_weights = read_file_weights(str(model), q.id)
    workload = Workload(context=ctx, batch=batch, prompt_tokens=prompt_tokens, kv_dtype=kv)

    def memory_for(layers: int | None) -> MemoryEstimate:
        placement = place(
            mdl,
            the_rig,
            eng,
            split=split,
            tensor_parallel=tensor_parallel,
            pipeline_parallel=pipeline_parallel,
            gpu_layers=layers,
        )
        return estimate_memory(mdl, q, eng, placement, workload, file_weights=file_weights, host_limit_bytes=host_limit)

    # RAM is sold in JEDEC units: a "64 GB" kit holds 64 GiB.
    host_limit = None if host_ram_gb is None else int(host_ram_gb * GIB)
    if gpu_layers is None and eng.id == "ollama":
        gpu_layers = "auto"  # Ollama sets num_gpu from free memory and offloads the rest by default
    if gpu_layers == "auto":
        mem = memory_for(None)  # engines that cannot offload treat "auto" as every layer
        if eng.offloads_layers and not all(d.fits for d in mem.devices):
            mem = _most_layers_that_fit(memory_for, mdl.num_layers)
    elif gpu_layers is None or (isinstance(gpu_layers, int) and not isinstance(gpu_layers, bool)):
        if gpu_layers is not None and gpu_layers <= mdl.num_layers and not eng.offloads_layers:
            raise UnsupportedError(
                f"{eng.name} keeps every layer on the GPUs; gpu_layers needs llama.cpp or transformers"
            )
        mem = memory_for(gpu_layers)
    else:
        raise InvalidValueError("gpu_layers", f"must be a whole number or 'auto', got {gpu_layers!r}")

    user_profile = None
    if use_user_calibration:
        from .calibration.user import load_user_profile

        user_profile = load_user_profile(eng.id, [g.id for g in the_rig.gpus])
    speed = estimate_speed(
        mdl,
        q,
        eng,
        the_rig,
        mem,
        SpeedWorkload(prompt_tokens, output_tokens, ctx, batch, kv),
        the_link,
        host_memory_bandwidth_gb_per_s=host_memory_bandwidth_gb_per_s,
        user_profile=user_profile,
        profiles=load_profiles(),
    )
    power = estimate_power(the_rig, mem, speed, batch=batch)
    return Estimate(
        model=mdl,
        rig=the_rig,
        engine=eng,
        quant=q,
        workload=workload,
        output_tokens=output_tokens,
        memory=mem,
        speed=speed,
        power=power,
        link=the_link,
        provenance=_provenance(mdl, the_rig, eng, q, mem, speed),
    )


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


def _provenance(
    model: Model, rig: Rig, engine: Engine, quant: Quant, mem: MemoryEstimate, speed: SpeedEstimate
) -> dict[str, Provenance]:
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
            else "vLLM profile-run activations (estimate)",
        ),
        "memory.per_gpu.overhead_bytes": Provenance(
            "estimate", "CUDA context / graphs / NCCL constants (memory/buffers.py)"
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
