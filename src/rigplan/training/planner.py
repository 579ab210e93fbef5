"""``rigplan.plan_training``: which rig to buy for a training job, and how to lay it out.

Enumerates GPU type × GPU count (× nodes for HGX-class servers), searches each rig's layouts —
tensor × pipeline × data parallel under the divisibility rules, ZeRO stage, activation
checkpointing, micro-batch — keeps the fastest layout that fits, then filters by deadline and
budget and ranks by cost to buy, cost to rent or time to train.  The layout search is in
:mod:`.layout_search`, ranking in :mod:`.plan_rank`, the result types in :mod:`.plan_types` and
the text in :mod:`.plan_text` (pure: it returns text for the CLI to print).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import load_catalog
from ..catalog.records import GPU, GPU_CLASSES, Catalog, Model
from ..edge import resolve_model_input
from ..errors import InvalidValueError, UnsupportedError
from ..rig import DEFAULT_NETWORK, Rig, check_network, resolve_gpu
from .cost import training_cost
from .frameworks import default_framework
from .layout_search import Job, best_layout
from .options import NO_BF16_ARCHITECTURES, check_lora_defaults, check_precision
from .plan_rank import rank_options
from .plan_text import format_duration, render_training_plan
from .plan_types import TrainingOption, TrainingPlan
from .profile import load_profile
from .setup import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    Method,
    Precision,
    parse_method,
    parse_optimizer,
    parse_precision,
)
from .shape import ModelShape, model_shape
from .speed import TrainingProfile, bf16_peak_flops

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "TrainingOption",
    "TrainingPlan",
    "format_duration",
    "plan_training",
    "render_training_plan",
]

# GPUs per node tried, and node counts for HGX-class (SXM / OAM) servers, which come as 8-GPU
# nodes on InfiniBand; other GPUs are planned as one workstation or server of up to 8 cards.
GPUS_PER_NODE_CHOICES = (1, 2, 4, 8)
HGX_GPUS_PER_NODE = 8
NODE_CHOICES = (2, 4, 8, 16, 32, 64)
DEFAULT_MAX_GPUS = 512

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
# cheapest: the whole machine to buy; rent: renting the same GPUs on demand for the run; fastest.
OBJECTIVES = ("cheapest", "rent", "fastest")


def default_tokens(method: Method, shape: ModelShape) -> int:
    if method is Method.PRETRAIN:
        return CHINCHILLA_TOKENS_PER_PARAM * shape.total_params
    return DEFAULT_FINETUNE_TOKENS


def default_global_batch(method: Method, seq_len: int) -> int:
    if method is Method.PRETRAIN:
        return max(1, PRETRAIN_BATCH_TOKENS // seq_len)
    return FINETUNE_GLOBAL_BATCH


def _rigs(gpu: GPU, max_gpus: int, network: str) -> Iterable[Rig]:
    for n in GPUS_PER_NODE_CHOICES:
        # a whole machine (DGX Spark, Strix Halo, a Mac) is a rig of its own, as rig strings say
        if n <= max_gpus and (n == 1 or not gpu.is_system):
            yield Rig(gpus=(gpu,) * n, nodes=1, network=network)
    if gpu.nvlink == "sxm" or gpu.form_factor == "oam":
        for k in NODE_CHOICES:
            if k * HGX_GPUS_PER_NODE <= max_gpus:
                yield Rig(gpus=(gpu,) * HGX_GPUS_PER_NODE, nodes=k, network=network)


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
    lora_rank: int = DEFAULT_LORA_RANK,
    lora_targets: str = DEFAULT_LORA_TARGETS,
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
    ask = _Ask(**{k: v for k, v in locals().items() if k not in ("model", "catalog")})
    catalog = catalog or load_catalog()
    return _plan(resolve_model_input(model, catalog), ask, catalog)


@dataclass(frozen=True, slots=True)
class _Ask:
    """The arguments of :func:`plan_training` past the model and the catalogue, unchecked."""

    task: str
    tokens: float | None
    deadline_s: float | None
    budget_usd: float | None
    max_gpus: int | None
    gpu_class: str | None
    gpus: Sequence[str] | None
    seq_len: int
    global_batch: int | None
    precision: str
    optimizer: str
    lora_rank: int
    lora_targets: str
    network: str | None
    objective: str
    allow_offload: bool
    limit: int
    have: Sequence[str]


def _plan(mdl: Model, a: _Ask, catalog: Catalog) -> TrainingPlan:
    """The plan for the resolved model: check, search every rig, filter, rank."""
    net = a.network or DEFAULT_NETWORK
    cap = DEFAULT_MAX_GPUS if a.max_gpus is None else a.max_gpus
    _check_plan_args(mdl, a.objective, net, a.gpu_class, a.seq_len, a.limit, a.lora_rank, cap)
    for name, num in (("deadline_s", a.deadline_s), ("budget_usd", a.budget_usd), ("tokens", a.tokens)):
        if num is not None and (isinstance(num, bool) or not isinstance(num, int | float) or not 0 < num < math.inf):
            raise InvalidValueError(name, f"must be a positive number, got {num!r}")
    from ..arch import check_supported

    check_supported(mdl)
    shape = model_shape(mdl)
    job, n_tokens = _job(shape, a)
    wanted, owned, owns_host = _gpu_pool(a.gpus, a.have, catalog)
    profile = load_profile()
    search = _PlanSearch(shape, job, n_tokens, catalog, profile, a.allow_offload, len(owned), owns_host)
    gpu_list = [g for g in catalog.gpus.values() if (wanted is None or g.id in wanted)]
    options, notes = search.run(gpu_list, a.gpu_class, cap, net)
    if not a.allow_offload and job.method.trains_base:
        notes.insert(0, "CPU offload not considered (allow_offload=True / --allow-offload to include it)")
    ranked = rank_options(_within_limits(options, a.deadline_s, a.budget_usd, notes), a.objective, a.limit)
    if not ranked and not notes:
        notes.append("nothing fits: try more GPUs (--max-gpus), QLoRA, or a shorter sequence")
    constraints = {
        "deadline_s": a.deadline_s,
        "budget_usd": a.budget_usd,
        "max_gpus": cap,
        "gpu_class": a.gpu_class,
        "gpus": sorted(wanted) if wanted else None,
        "network": net,
        "allow_offload": a.allow_offload,
    }
    return TrainingPlan(
        mdl,
        job.method,
        n_tokens,
        a.seq_len,
        job.global_batch,
        a.objective,
        ranked,
        search.considered,
        tuple(notes),
        constraints,
        profile.name,
    )


def _job(shape: ModelShape, a: _Ask) -> tuple[Job, int]:
    """What is trained, and on how many tokens (defaults by method)."""
    method = parse_method(a.task)
    check_lora_defaults(method, a.lora_rank, a.lora_targets)
    n_tokens = int(a.tokens) if a.tokens is not None else default_tokens(method, shape)
    batch = a.global_batch if a.global_batch is not None else default_global_batch(method, a.seq_len)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidValueError("global_batch", f"must be a whole number ≥ 1, got {a.global_batch!r}")
    prec, opt = parse_precision(a.precision), parse_optimizer(a.optimizer)
    return Job(method, a.seq_len, batch, prec, opt, a.lora_rank, a.lora_targets), n_tokens


def _gpu_pool(
    gpus: Sequence[str] | None, have: Sequence[str], catalog: Catalog
) -> tuple[set[str] | None, list[GPU], bool]:
    """(GPU ids to try, None: all; the owned GPUs; whether the user owns a PC)."""
    wanted = {resolve_gpu(x, catalog).id for x in gpus} if gpus else None
    owned, owns_host = _owned_gpus(have, catalog)
    if owned:
        wanted = {owned[0].id} if wanted is None else wanted & {owned[0].id}
    return wanted, owned, owns_host


def _check_plan_args(
    mdl: Model, objective: str, net: str, gpu_class: str | None, seq_len: Any, limit: Any, lora_rank: Any, cap: Any
) -> None:
    if objective not in OBJECTIVES:
        raise InvalidValueError("objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    check_network(net)
    if gpu_class is not None and gpu_class.lower() not in GPU_CLASSES:
        raise InvalidValueError("gpu_class", f"must be one of {', '.join(GPU_CLASSES)}, got {gpu_class!r}")
    for name, value in (("seq_len", seq_len), ("limit", limit), ("lora_rank", lora_rank)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(name, f"must be a whole number ≥ 1, got {value!r}")
    if seq_len > mdl.max_context:
        raise InvalidValueError("seq_len", f"{seq_len} exceeds {mdl.id}'s maximum of {mdl.max_context} tokens")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise InvalidValueError("max_gpus", f"must be a whole number ≥ 1, got {cap!r}")


class _PlanSearch:
    """Every rig of every GPU type, with its fastest layout that fits, priced for the run."""

    def __init__(
        self,
        shape: ModelShape,
        job: Job,
        tokens: int,
        catalog: Catalog,
        profile: TrainingProfile,
        allow_offload: bool,
        owned: int,
        owns_host: bool,
    ):
        self.shape, self.job, self.tokens, self.catalog, self.profile = shape, job, tokens, catalog, profile
        self.allow_offload, self.owned, self.owns_host = allow_offload, owned, owns_host
        self.considered = 0

    def run(
        self, gpus: Sequence[GPU], gpu_class: str | None, cap: int, net: str
    ) -> tuple[list[TrainingOption], list[str]]:
        """(options, notes naming the GPUs without a speed estimate and why)."""
        options: list[TrainingOption] = []
        unknown: dict[str, list[str]] = {}
        in_f16: list[str] = []
        for gpu in gpus:
            if gpu_class and gpu.gpu_class != gpu_class.lower():
                continue
            job = self._job_on(gpu)
            try:
                bf16_peak_flops(gpu)
                check_precision(gpu, job.method, job.precision)
            except UnsupportedError as exc:
                why = str(exc).split(": ", 1)[-1].split(";")[0].replace(f"{gpu.id} ", "")
                unknown.setdefault(why, []).append(gpu.id)
                continue
            if job is not self.job:
                in_f16.append(gpu.id)
            options += [o for rig in _rigs(gpu, cap, net) if (o := self._option(rig, job)) is not None]
        notes = [f"not estimated ({why}): {', '.join(ids)}" for why, ids in sorted(unknown.items())]
        if in_f16:
            notes.append(f"f16 mixed precision (no bf16 on these GPUs): {', '.join(in_f16)}")
        return options, notes

    def _job_on(self, gpu: GPU) -> Job:
        """The job as ``gpu`` runs it: bf16 becomes f16 mixed precision where the GPU has no bf16."""
        if self.job.precision is Precision.BF16 and gpu.architecture in NO_BF16_ARCHITECTURES:
            return dataclasses.replace(self.job, precision=Precision.F16)
        return self.job

    def _option(self, rig: Rig, job: Job) -> TrainingOption | None:
        if rig.gpu_count < self.owned:
            return None
        self.considered += 1
        try:
            found = best_layout(self.shape, rig, job, allow_offload=self.allow_offload, profile=self.profile)
        except UnsupportedError:
            return None
        if found is None:
            return None
        cand, link = found
        time_s = self.tokens / cand.speed.tokens_per_s
        cost = training_cost(rig, self.catalog, time_s, owned=self.owned, owns_host=self.owns_host)
        fw = default_framework(cand.layout).value
        return TrainingOption(rig, cand.layout, cand.setup, cand.memory, cand.speed, link, time_s, cost, framework=fw)


def _within_limits(
    options: list[TrainingOption], deadline_s: float | None, budget_usd: float | None, notes: list[str]
) -> list[TrainingOption]:
    """The options within the deadline and budget; ``notes`` says what was left out and why."""
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
    return options


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
