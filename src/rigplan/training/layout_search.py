"""The fastest layout of one rig that fits: tensor × pipeline × data parallel under the
divisibility rules, ZeRO stage, activation checkpointing and micro-batch (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import GPU
from ..rig import Rig
from .frameworks import default_framework, load_framework
from .memory import TrainingMemory, estimate_training_memory
from .profile import load_profile
from .setup import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    Checkpointing,
    Layout,
    Method,
    Optimizer,
    Precision,
    TrainingSetup,
)
from .shape import ModelShape
from .speed import Interconnect, TrainingProfile, TrainingSpeed, interconnect_for
from .step import estimate_training_speed

MICRO_BATCH_CHOICES = (16, 8, 4, 2, 1)
TENSOR_PARALLEL_CHOICES = (1, 2, 4, 8)
PIPELINE_PARALLEL_CHOICES = (1, 2, 4, 8, 16)


def _fast_intra_node(gpu: GPU, gpus_per_node: int) -> bool:
    """Tensor parallelism only pays over NVLink / Infinity Fabric (SXM, OAM, bridged pairs)."""
    if gpu.nvlink == "sxm" or gpu.form_factor == "oam":
        return True
    return gpu.nvlink == "bridge" and gpus_per_node <= (gpu.nvlink_max_gpus or 2)


@dataclass(frozen=True, slots=True)
class Candidate:
    layout: Layout
    setup: TrainingSetup
    memory: TrainingMemory
    speed: TrainingSpeed


@dataclass(frozen=True, slots=True)
class Job:
    """What is trained, independent of the layout."""

    method: Method
    seq_len: int
    global_batch: int
    precision: Precision = Precision.BF16
    optimizer: Optimizer = Optimizer.ADAMW
    lora_rank: int = DEFAULT_LORA_RANK
    lora_targets: str = DEFAULT_LORA_TARGETS

    def setup(self, mb: int, dp: int, zero: int, ckpt: Checkpointing, offload: str | None) -> TrainingSetup:
        return TrainingSetup(
            method=self.method,
            precision=self.precision,
            optimizer=self.optimizer,
            seq_len=self.seq_len,
            micro_batch=mb,
            grad_accumulation=self.global_batch // (mb * dp),
            zero_stage=zero,
            hybrid_shard=False,
            checkpointing=ckpt,
            offload=offload,
            lora_rank=0 if self.method.trains_base else self.lora_rank,
            lora_targets=self.lora_targets,
            paged_optimizer=self.method is Method.QLORA,
        )


def _zero_choices(method: Method, dp: int, pp: int, offload: str | None) -> tuple[int, ...]:
    if dp == 1:
        zeros: tuple[int, ...] = (0,)
    elif method.trains_base:
        zeros = (0, 1) if pp > 1 else (0, 1, 2, 3)
    else:
        zeros = (0, 3) if pp == 1 else (0,)
    return tuple(z for z in zeros if z >= 1) if offload else zeros


class _Search:
    """The best candidate so far, and the best one whose paged optimizer spills to host RAM."""

    def __init__(self, shape: ModelShape, rig: Rig, job: Job, link: Interconnect, profile: TrainingProfile):
        self.shape, self.rig, self.job, self.link, self.profile = shape, rig, job, link, profile
        self.best: Candidate | None = None
        self.spilled: Candidate | None = None

    def consider(self, tp: int, pp: int, offload: str | None) -> bool:
        """Try every ZeRO stage × checkpointing × micro-batch of a TP × PP layout; True if one fits."""
        rig, job = self.rig, self.job
        dp = rig.gpu_count // (tp * pp)
        if job.global_batch % dp:
            return False
        layout = Layout(tp, pp, dp, rig.gpus_per_node, rig.nodes)
        found = False
        for z in _zero_choices(job.method, dp, pp, offload):
            for ckpt in (Checkpointing.NONE, Checkpointing.SELECTIVE, Checkpointing.FULL):
                found |= self._largest_micro_batch(layout, z, ckpt, offload)
        return found

    def _largest_micro_batch(self, layout: Layout, zero: int, ckpt: Checkpointing, offload: str | None) -> bool:
        gpu, dp = self.rig.gpus[0], layout.data_parallel
        for mb in MICRO_BATCH_CHOICES:
            if self.job.global_batch % (mb * dp):
                continue
            setup = self.job.setup(mb, dp, zero, ckpt, offload)
            mem = estimate_training_memory(self.shape, setup, layout, gpu)
            if not mem.fits:
                continue
            framework = load_framework(default_framework(layout))
            speed = estimate_training_speed(self.shape, setup, layout, gpu, self.link, self.profile, framework)
            cand = Candidate(layout, setup, mem, speed)
            if mem.peak.paged_to_host_bytes:
                if self.spilled is None or speed.tokens_per_s > self.spilled.speed.tokens_per_s:
                    self.spilled = cand
                continue
            if self.best is None or speed.tokens_per_s > self.best.speed.tokens_per_s:
                self.best = cand
            return True
        return False


def best_layout(
    shape: ModelShape, rig: Rig, job: Job, *, allow_offload: bool = False, profile: TrainingProfile | None = None
) -> tuple[Candidate, Interconnect] | None:
    """The fastest layout of ``rig`` that fits, or None.

    LoRA and QLoRA are planned data parallel only (DDP, or ZeRO-3 / FSDP sharding the frozen
    base as FSDP-QLoRA does): PEFT and bitsandbytes do not run under Megatron-style TP/PP.
    Pipeline stages are tried only when nothing fits without them, CPU offload only after that.
    Layouts whose paged optimizer would spill to host RAM count only when nothing else fits.
    """
    link = interconnect_for(rig.gpus, rig.network, rig.nodes)
    search = _Search(shape, rig, job, link, profile or load_profile())
    g, gpn, trains_base = rig.gpu_count, rig.gpus_per_node, job.method.trains_base
    tps = [
        tp
        for tp in TENSOR_PARALLEL_CHOICES
        if tp <= gpn and not gpn % tp and not shape.num_heads % tp and not shape.num_kv_heads % tp
    ]
    if not _fast_intra_node(rig.gpus[0], gpn) or not trains_base:
        tps = tps[:1]
    any_fit = False
    for tp in tps:
        any_fit |= search.consider(tp, 1, None)
    if not any_fit and trains_base:
        for tp in tps:
            for pp in PIPELINE_PARALLEL_CHOICES[1:]:
                if pp * tp <= g and not g % (pp * tp) and not shape.num_layers % pp:
                    any_fit |= search.consider(tp, pp, None)
    if not any_fit and allow_offload and trains_base and g > 1:
        search.consider(1, 1, "cpu")
    chosen = search.best or search.spilled
    return (chosen, link) if chosen else None
