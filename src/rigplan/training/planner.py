"""``rigplan.plan_training``: which rig to buy for a training job, and how to lay it out.

Enumerates GPU type × GPU count (× nodes for HGX-class servers), searches each rig's layouts —
tensor × pipeline × data parallel under the divisibility rules, ZeRO stage, activation
checkpointing, micro-batch — keeps the fastest layout that fits, then filters by deadline and
budget and ranks by cost to buy or by time to train.  Rent is not ranked: the catalogue has no
sourced hourly prices.

Pure: :func:`render_training_plan` returns text for the CLI to print.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalog import load_catalog
from ..catalog.records import GPU, GPU_CLASSES, Catalog, Model
from ..edge import resolve_model_input
from ..errors import InvalidValueError, UnsupportedError
from ..rig import DEFAULT_NETWORK, NETWORKS, Rig
from ..units import format_gib, format_rate, format_usd
from .cost import TrainingCost, training_cost
from .frameworks import default_framework, load_framework
from .memory import TrainingMemory, estimate_training_memory
from .profile import load_profile
from .setup import (
    Checkpointing,
    Layout,
    Method,
    Optimizer,
    Precision,
    TrainingSetup,
    parse_method,
    parse_optimizer,
    parse_precision,
)
from .shape import ModelShape, model_shape
from .speed import Interconnect, TrainingProfile, TrainingSpeed, bf16_peak_flops, interconnect_for
from .step import estimate_training_speed

# GPUs per node tried, and node counts for HGX-class (SXM / OAM) servers, which come as 8-GPU
# nodes on InfiniBand; other GPUs are planned as one workstation or server of up to 8 cards.
GPUS_PER_NODE_CHOICES = (1, 2, 4, 8)
HGX_GPUS_PER_NODE = 8
NODE_CHOICES = (2, 4, 8, 16, 32, 64)
DEFAULT_MAX_GPUS = 512
MICRO_BATCH_CHOICES = (16, 8, 4, 2, 1)
TENSOR_PARALLEL_CHOICES = (1, 2, 4, 8)
PIPELINE_PARALLEL_CHOICES = (1, 2, 4, 8, 16)

# Default work when the caller gives no token count.  Pretraining: 20 tokens per parameter,
# the compute-optimal ratio of Hoffmann et al. 2022 ("Chinchilla").  Fine-tuning: Stanford
# Alpaca's recipe, 52K examples × 3 epochs at a few hundred tokens each ≈ 5e7 tokens
# (tatsu-lab/stanford_alpaca README) [D].
CHINCHILLA_TOKENS_PER_PARAM = 20
DEFAULT_FINETUNE_TOKENS = 50_000_000
# Default global batch.  Pretraining: 4M tokens (Llama 2 paper §2.2, "global batch-size of 4M
# tokens"); fine-tuning: 128 sequences (Stanford Alpaca README: batch size 128).
PRETRAIN_BATCH_TOKENS = 4 * 1024 * 1024
FINETUNE_GLOBAL_BATCH = 128
# A rig whose step is more than this share exposed communication gets a warning line.
COMM_BOUND_SHARE = 0.3
# cheapest: the whole machine to buy; rent: renting the same GPUs on demand for the run; fastest.
OBJECTIVES = ("cheapest", "rent", "fastest")
COMMUNICATION_KEYS = (
    "tensor_parallel",
    "pipeline_send",
    "pipeline_bubble",
    "context_parallel",
    "expert_all_to_all",
    "data_parallel_exposed",
    "offload_copies",
)


@dataclass(frozen=True, slots=True)
class TrainingOption:
    """One rig with its fastest layout that fits."""

    rig: Rig
    layout: Layout
    setup: TrainingSetup
    memory: TrainingMemory
    speed: TrainingSpeed
    interconnect: Interconnect
    time_to_train_s: float
    cost: TrainingCost
    pareto: bool = False
    why: tuple[str, ...] = ()
    framework: str = "fsdp"

    @property
    def buy_usd(self) -> float | None:
        return self.cost.buy_usd

    @property
    def rent_usd(self) -> float | None:
        return self.cost.rent_usd("on-demand", self.rig.gpu_count)

    def to_dict(self) -> dict[str, Any]:
        s, lay, peak = self.setup, self.layout, self.memory.peak
        return {
            "rig": self.rig.describe(),
            "gpu": self.rig.gpus[0].id,
            "gpu_count": self.rig.gpu_count,
            "nodes": self.rig.nodes,
            "tensor_parallel": lay.tensor_parallel,
            "pipeline_parallel": lay.pipeline_parallel,
            "data_parallel": lay.data_parallel,
            "zero_stage": s.zero_stage,
            "micro_batch": s.micro_batch,
            "grad_accumulation": s.grad_accumulation,
            "activation_checkpointing": s.checkpointing.value,
            "offload": s.offload,
            "interconnect": self.interconnect.description,
            "peak_gpu_bytes": peak.total_bytes,
            "capacity_bytes": peak.capacity_bytes,
            "host_bytes": self.memory.host_bytes,
            "tokens_per_s": self.speed.tokens_per_s,
            "tokens_per_s_per_gpu": self.speed.tokens_per_s_per_gpu,
            "mfu": self.speed.mfu,
            "time_to_train_s": self.time_to_train_s,
            "buy_usd": self.cost.buy_usd,
            "price_note": None if not self.cost.missing_prices else "price unknown",
            "unpriced": list(self.cost.unpriced),
            "rent_on_demand_usd": self.rent_usd,
            "electricity_usd": self.cost.electricity_usd,
            "energy_kwh": self.cost.energy_kwh,
            "framework": self.framework,
            "pareto": self.pareto,
            "why": list(self.why),
        }


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    model: Model
    method: Method
    tokens: int
    seq_len: int
    global_batch: int
    objective: str
    options: tuple[TrainingOption, ...]
    rigs_considered: int
    notes: tuple[str, ...] = ()
    constraints: dict[str, Any] = field(default_factory=dict)
    profile: str = ""
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "task": self.method.value,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
            "objective": self.objective,
            "constraints": dict(self.constraints),
            "rigs_considered": self.rigs_considered,
            "options": [o.to_dict() for o in self.options],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "speed_profile": self.profile,
            "rent": "renting the same GPUs on demand (catalog/data/rental.toml) for the run",
        }


def default_tokens(method: Method, shape: ModelShape) -> int:
    if method is Method.PRETRAIN:
        return CHINCHILLA_TOKENS_PER_PARAM * shape.total_params
    return DEFAULT_FINETUNE_TOKENS


def default_global_batch(method: Method, seq_len: int) -> int:
    if method is Method.PRETRAIN:
        return max(1, PRETRAIN_BATCH_TOKENS // seq_len)
    return FINETUNE_GLOBAL_BATCH


def _fast_intra_node(gpu: GPU, gpus_per_node: int) -> bool:
    if gpu.nvlink == "sxm" or gpu.form_factor == "oam":
        return True
    return gpu.nvlink == "bridge" and gpus_per_node <= (gpu.nvlink_max_gpus or 2)


def _rigs(gpu: GPU, max_gpus: int, network: str) -> Iterable[Rig]:
    for n in GPUS_PER_NODE_CHOICES:
        if n <= max_gpus:
            yield Rig(gpus=(gpu,) * n, nodes=1, network=network)
    if gpu.nvlink == "sxm" or gpu.form_factor == "oam":
        for k in NODE_CHOICES:
            if k * HGX_GPUS_PER_NODE <= max_gpus:
                yield Rig(gpus=(gpu,) * HGX_GPUS_PER_NODE, nodes=k, network=network)


@dataclass(frozen=True, slots=True)
class _Candidate:
    layout: Layout
    setup: TrainingSetup
    memory: TrainingMemory
    speed: TrainingSpeed


def _setup(
    method: Method,
    precision: Precision,
    optimizer: Optimizer,
    seq_len: int,
    mb: int,
    ga: int,
    zero: int,
    ckpt: Checkpointing,
    offload: str | None,
    lora_rank: int,
    lora_targets: str,
) -> TrainingSetup:
    return TrainingSetup(
        method=method,
        precision=precision,
        optimizer=optimizer,
        seq_len=seq_len,
        micro_batch=mb,
        grad_accumulation=ga,
        zero_stage=zero,
        hybrid_shard=False,
        checkpointing=ckpt,
        offload=offload,
        lora_rank=0 if method.trains_base else lora_rank,
        lora_targets=lora_targets,
        paged_optimizer=method is Method.QLORA,
    )


def best_layout(
    shape: ModelShape,
    rig: Rig,
    *,
    method: Method,
    seq_len: int,
    global_batch: int,
    precision: Precision = Precision.BF16,
    optimizer: Optimizer = Optimizer.ADAMW,
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    allow_offload: bool = False,
    profile: TrainingProfile | None = None,
) -> tuple[_Candidate, Interconnect] | None:
    """The fastest layout of ``rig`` that fits, or None (pure; searched as the module says).

    LoRA and QLoRA are planned data parallel only (DDP, or ZeRO-3 / FSDP sharding the frozen
    base as FSDP-QLoRA does): PEFT and bitsandbytes do not run under Megatron-style TP/PP.
    Layouts whose paged optimizer would spill to host RAM count only when nothing else fits.
    """
    profile = profile or load_profile()
    gpu = rig.gpus[0]
    link = interconnect_for(rig.gpus, rig.network, rig.nodes)
    g, gpn = rig.gpu_count, rig.gpus_per_node
    fast = _fast_intra_node(gpu, gpn)
    best: _Candidate | None = None
    spilled: _Candidate | None = None

    def consider(tp: int, pp: int, offload: str | None) -> bool:
        nonlocal best, spilled
        dp = g // (tp * pp)
        if global_batch % dp:
            return False
        layout = Layout(tp, pp, dp, gpn, rig.nodes)
        if dp == 1:
            zeros: tuple[int, ...] = (0,)
        elif method.trains_base:
            zeros = (0, 1) if pp > 1 else (0, 1, 2, 3)
        else:
            zeros = (0, 3) if pp == 1 else (0,)
        if offload:
            zeros = tuple(z for z in zeros if z >= 1)
        found = False
        for z in zeros:
            for ckpt in (Checkpointing.NONE, Checkpointing.SELECTIVE, Checkpointing.FULL):
                for mb in MICRO_BATCH_CHOICES:
                    if global_batch % (mb * dp):
                        continue
                    setup = _setup(
                        method,
                        precision,
                        optimizer,
                        seq_len,
                        mb,
                        global_batch // (mb * dp),
                        z,
                        ckpt,
                        offload,
                        lora_rank,
                        lora_targets,
                    )
                    mem = estimate_training_memory(shape, setup, layout, gpu)
                    if not mem.fits:
                        continue
                    framework = load_framework(default_framework(layout))
                    speed = estimate_training_speed(shape, setup, layout, gpu, link, profile, framework)
                    cand = _Candidate(layout, setup, mem, speed)
                    if mem.peak.paged_to_host_bytes:
                        if spilled is None or speed.tokens_per_s > spilled.speed.tokens_per_s:
                            spilled = cand
                        continue
                    found = True
                    if best is None or speed.tokens_per_s > best.speed.tokens_per_s:
                        best = cand
                    break  # the largest micro-batch that fits at this checkpointing
        return found

    tps = [
        tp
        for tp in TENSOR_PARALLEL_CHOICES
        if tp <= gpn and not gpn % tp and not shape.num_heads % tp and not shape.num_kv_heads % tp
    ]
    if not fast or not method.trains_base:
        tps = tps[:1]
    any_fit = False
    for tp in tps:
        any_fit |= consider(tp, 1, None)
    if not any_fit and method.trains_base:  # pipeline stages only when nothing fits otherwise
        for tp in tps:
            for pp in PIPELINE_PARALLEL_CHOICES[1:]:
                if pp * tp <= g and not g % (pp * tp) and not shape.num_layers % pp:
                    any_fit |= consider(tp, pp, None)
    if not any_fit and allow_offload and method.trains_base and g > 1:
        consider(1, 1, "cpu")
    chosen = best or spilled
    return (chosen, link) if chosen else None


def plan_training(
    model: str | Mapping[str, Any] | Model,
    *,
    task: str = "lora",
    tokens: float | None = None,
    deadline_s: float | None = None,
    budget_usd: float | None = None,
    max_gpus: int | None = None,
    gpu_class: str | None = None,
    gpus: Sequence[str] | None = None,
    seq_len: int = 2048,
    global_batch: int | None = None,
    precision: str = "bf16",
    optimizer: str = "adamw",
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    network: str | None = None,
    objective: str = "cheapest",
    allow_offload: bool = False,
    limit: int = 10,
    catalog: Catalog | None = None,
    have: Sequence[str] = (),
) -> TrainingPlan:
    """Rank rigs for training ``model``: cost to buy vs time to train.

    >>> plan = plan_training("llama-3-8b", task="qlora", gpu_class="consumer", limit=3)
    >>> plan.options[0].rig.gpu_count >= 1
    True

    Args:
        task: "lora" | "qlora" | "full" | "pretrain".
        tokens: tokens to train on; None = 20 per parameter (pretrain) or 5e7 (fine-tunes).
        deadline_s: keep rigs that finish within this many seconds.
        budget_usd: keep rigs whose GPUs cost at most this (rigs without a price are dropped).
        gpus: restrict to these catalogue GPU ids.
        objective: "cheapest" (buy cost, then time) or "fastest".
        allow_offload: also try ZeRO-Offload (optimizer states in host RAM) where nothing else fits.
        have: what you own: GPUs ("2x rtx-3090": rigs of that GPU with at least that many, the
            owned ones free) and/or a PC ("desktop": its platform and PSU are not priced).

    Raises:
        RigplanError: unknown names or impossible values.
    """
    catalog = catalog or load_catalog()
    mdl = resolve_model_input(model, catalog)
    method = parse_method(task)
    prec = parse_precision(precision)
    opt = parse_optimizer(optimizer)
    if objective not in OBJECTIVES:
        raise InvalidValueError("objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    net = network or DEFAULT_NETWORK
    if net not in NETWORKS:
        raise InvalidValueError("network", f"must be one of {', '.join(NETWORKS)}, got {network!r}")
    if gpu_class is not None and gpu_class.lower() not in GPU_CLASSES:
        raise InvalidValueError("gpu_class", f"must be one of {', '.join(GPU_CLASSES)}, got {gpu_class!r}")
    for name, value in (("seq_len", seq_len), ("limit", limit), ("lora_rank", lora_rank)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(name, f"must be a whole number ≥ 1, got {value!r}")
    if seq_len > mdl.max_context:
        raise InvalidValueError("seq_len", f"{seq_len} exceeds {mdl.id}'s maximum of {mdl.max_context} tokens")
    for name, num in (("deadline_s", deadline_s), ("budget_usd", budget_usd), ("tokens", tokens)):
        if num is not None and (isinstance(num, bool) or not isinstance(num, int | float) or not 0 < num < math.inf):
            raise InvalidValueError(name, f"must be a positive number, got {num!r}")
    cap = DEFAULT_MAX_GPUS if max_gpus is None else max_gpus
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise InvalidValueError("max_gpus", f"must be a whole number ≥ 1, got {max_gpus!r}")
    from ..arch import check_supported

    check_supported(mdl)
    shape = model_shape(mdl)
    n_tokens = int(tokens) if tokens is not None else default_tokens(method, shape)
    batch = global_batch if global_batch is not None else default_global_batch(method, seq_len)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidValueError("global_batch", f"must be a whole number ≥ 1, got {global_batch!r}")
    wanted = None
    if gpus:
        from ..rig import resolve_gpu

        wanted = {resolve_gpu(x, catalog).id for x in gpus}
    owned, owns_host = _owned_gpus(have, catalog)
    if owned:
        wanted = {owned[0].id} if wanted is None else wanted & {owned[0].id}
    profile = load_profile()
    notes: list[str] = []
    unknown_speed: list[tuple[str, str]] = []
    options: list[TrainingOption] = []
    considered = 0
    for gpu in catalog.gpus.values():
        if wanted is not None and gpu.id not in wanted:
            continue
        if gpu_class and gpu.gpu_class != gpu_class.lower():
            continue
        try:
            bf16_peak_flops(gpu)
        except UnsupportedError as exc:
            unknown_speed.append((gpu.id, str(exc).split(": ", 1)[-1].split(";")[0]))
            continue
        if method is Method.QLORA and gpu.vendor not in ("nvidia", "amd"):
            continue
        for rig in _rigs(gpu, cap, net):
            if rig.gpu_count < len(owned):
                continue
            considered += 1
            try:
                found = best_layout(
                    shape,
                    rig,
                    method=method,
                    seq_len=seq_len,
                    global_batch=batch,
                    precision=prec,
                    optimizer=opt,
                    lora_rank=lora_rank,
                    lora_targets=lora_targets,
                    allow_offload=allow_offload,
                    profile=profile,
                )
            except UnsupportedError:
                found = None
            if found is None:
                continue
            cand, link = found
            time_s = n_tokens / cand.speed.tokens_per_s
            cost = training_cost(rig, catalog, time_s, owned=len(owned), owns_host=owns_host)
            fw = default_framework(cand.layout).value
            options.append(
                TrainingOption(rig, cand.layout, cand.setup, cand.memory, cand.speed, link, time_s, cost, framework=fw)
            )
    if not allow_offload and method.trains_base:
        notes.append("CPU offload not considered (allow_offload=True / --allow-offload to include it)")
    if unknown_speed:
        by_reason: dict[str, list[str]] = {}
        for gid, why in unknown_speed:
            by_reason.setdefault(why, []).append(gid)
        notes += [f"not estimated ({why}): {', '.join(ids)}" for why, ids in sorted(by_reason.items())]
    if deadline_s is not None:
        late = [o for o in options if o.time_to_train_s > deadline_s]
        options = [o for o in options if o.time_to_train_s <= deadline_s]
        if late and not options:
            fastest = min(late, key=lambda o: o.time_to_train_s)
            notes.append(
                f"no rig meets the deadline; the fastest considered, {fastest.rig.describe()}, takes "
                f"{format_duration(fastest.time_to_train_s)}"
            )
    if budget_usd is not None:
        unpriced = sum(1 for o in options if o.buy_usd is None)
        options = [o for o in options if o.buy_usd is not None and o.buy_usd <= budget_usd]
        if unpriced:
            notes.append(f"{unpriced} rigs without a catalogue price were left out of the budget check")
    options = _mark(_pareto_per_gpu(options))
    if objective == "cheapest":
        options.sort(key=lambda o: (o.buy_usd is None, o.buy_usd or 0.0, o.time_to_train_s))
    elif objective == "rent":
        options.sort(key=lambda o: (o.rent_usd is None, o.rent_usd or 0.0, o.time_to_train_s))
    else:
        options.sort(key=lambda o: (o.time_to_train_s, o.buy_usd is None, o.buy_usd or 0.0))
    ranked = tuple(_explain(o, i, objective) for i, o in enumerate(options[:limit]))
    if not ranked and not notes:
        notes.append("nothing fits: try more GPUs (--max-gpus), QLoRA, or a shorter sequence")
    constraints = {
        "deadline_s": deadline_s,
        "budget_usd": budget_usd,
        "max_gpus": cap,
        "gpu_class": gpu_class,
        "gpus": sorted(wanted) if wanted else None,
        "network": net,
        "allow_offload": allow_offload,
    }
    return TrainingPlan(
        mdl, method, n_tokens, seq_len, batch, objective, ranked, considered, tuple(notes), constraints, profile.name
    )


def _owned_gpus(have: Sequence[str], catalog: Catalog) -> tuple[list[GPU], bool]:
    """The GPUs of ``have``, and whether it names a PC.  Training rigs are of one GPU type, so
    owned GPUs must be one type."""
    from ..owned_host import split_have
    from ..rig import parse_rig

    gpu_items, hosts = split_have(have)
    owned = [g for text in gpu_items for g in parse_rig(text, catalog).gpus]
    if len({g.id for g in owned}) > 1:
        raise InvalidValueError("have", "training plans use one GPU type: own GPUs of one kind")
    return owned, bool(hosts)


def _pareto_per_gpu(options: list[TrainingOption]) -> list[TrainingOption]:
    """Per GPU type, drop rigs that are both slower and no cheaper than another count of it."""
    kept = []
    for o in options:
        same = [p for p in options if p.rig.gpus[0].id == o.rig.gpus[0].id and p is not o]
        dominated = any(p.rig.gpu_count < o.rig.gpu_count and p.time_to_train_s <= o.time_to_train_s for p in same)
        if not dominated:
            kept.append(o)
    return kept


def _mark(options: list[TrainingOption]) -> list[TrainingOption]:
    """Flag options no other priced option beats on both cost and time."""

    priced = [o for o in options if o.buy_usd is not None]
    out = []
    for o in options:
        front = o.buy_usd is not None and not any(
            p is not o
            and p.buy_usd is not None
            and o.buy_usd is not None
            and p.buy_usd <= o.buy_usd
            and p.time_to_train_s <= o.time_to_train_s
            and (p.buy_usd < o.buy_usd or p.time_to_train_s < o.time_to_train_s)
            for p in priced
        )
        out.append(dataclasses.replace(o, pareto=front))
    return out


def _explain(o: TrainingOption, rank: int, objective: str) -> TrainingOption:
    import dataclasses

    why = []
    if rank == 0:
        why.append(
            "cheapest rig that fits"
            if objective == "cheapest" and o.buy_usd is not None
            else "cheapest to rent for this run"
            if objective == "rent" and o.rent_usd is not None
            else "fastest rig"
            if objective == "fastest"
            else "first of the rigs without a price"
        )
    if o.pareto and rank > 0:
        why.append("no cheaper rig trains faster")
    if o.buy_usd is None:
        why.append(f"price unknown for {o.rig.gpus[0].id}")
    elif o.cost.unpriced:
        kinds = ("baseboard", "platform", "network")
        what = next((k for k in kinds if any(k in u for u in o.cost.unpriced)), "part")
        why.append(f"+ unpriced {what}")
    comm = sum(o.speed.breakdown_s.get(k, 0.0) for k in COMMUNICATION_KEYS)
    if comm > COMM_BOUND_SHARE * o.speed.step_time_s:
        why.append(f"{comm / o.speed.step_time_s:.0%} of each step is communication ({o.interconnect.description})")
    if o.setup.offload:
        why.append(f"CPU offload: needs {format_gib(o.memory.host_bytes, 0)} of host RAM per node")
    if o.memory.peak.paged_to_host_bytes:
        why.append("paged optimizer spills to host RAM")
    return dataclasses.replace(o, why=tuple(why))


def format_duration(seconds: float) -> str:
    """``5400`` → ``'1.5 h'``; days past 48 h.

    >>> format_duration(5400), format_duration(42), format_duration(3 * 86400)
    ('1.5 h', '42 s', '3.0 days')
    """
    hours = seconds / 3600
    if seconds < 60:
        return f"{seconds:.0f} s"
    if hours < 1:
        return f"{seconds / 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _layout_text(o: TrainingOption) -> str:
    s, lay = o.setup, o.layout
    parts = []
    if lay.tensor_parallel > 1:
        parts.append(f"TP{lay.tensor_parallel}")
    if lay.pipeline_parallel > 1:
        parts.append(f"PP{lay.pipeline_parallel}")
    if lay.data_parallel > 1:
        parts.append(f"DP{lay.data_parallel}" + (f" ZeRO-{s.zero_stage}" if s.zero_stage else " DDP"))
    parts.append(f"mb {s.micro_batch}×{s.grad_accumulation}")
    ckpt = {Checkpointing.NONE: "", Checkpointing.SELECTIVE: "sel-ckpt", Checkpointing.FULL: "ckpt"}[s.checkpointing]
    if ckpt:
        parts.append(ckpt)
    if s.offload:
        parts.append("offload")
    return " ".join(parts)


def render_training_plan(plan: TrainingPlan) -> str:
    """The plan as a fixed-width text table with notes (what ``rigplan plan --task`` prints)."""
    head = (
        f"{plan.model.id} · {plan.method.value} · {plan.tokens:.3g} tokens of {plan.seq_len:,} · "
        f"global batch {plan.global_batch} · ranked {plan.objective} first "
        f"({plan.rigs_considered} rigs considered)"
    )
    cols = ["#", "rig", "layout", "peak/GPU", "tok/s", "MFU", "time", "buy", "rent", "notes"]
    rows = []
    for i, o in enumerate(plan.options, 1):
        rows.append(
            [
                str(i),
                o.rig.describe(),
                _layout_text(o),
                f"{format_gib(o.memory.peak.total_bytes)}/{format_gib(o.memory.peak.capacity_bytes, 0)}",
                format_rate(o.speed.tokens_per_s, ""),
                f"{o.speed.mfu:.0%}",
                format_duration(o.time_to_train_s),
                format_usd(o.buy_usd),
                format_usd(o.rent_usd) if o.rent_usd is not None else "n/a",
                "; ".join(o.why),
            ]
        )
    widths = [max(len(c), *(len(r[j]) for r in rows)) if rows else len(c) for j, c in enumerate(cols)]
    right = {0, 3, 4, 5, 6, 7, 8}

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    lines = [head, "", line(cols), *(line(r) for r in rows)]
    if not rows:
        lines.append("(no rig fits the constraints)")
    lines.append("")
    lines.append(
        "buy = whole machine (GPUs, platform, PSU; SXM GPUs as DGX systems where priced); rent = the same GPUs "
        f"on demand for the run (RunPod, March 2026). Speed profile {plan.profile}; framework megatron for TP/PP "
        "layouts, fsdp otherwise."
    )
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)
