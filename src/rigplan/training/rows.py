"""Rows of ``calibration/measurements/training_frameworks.csv`` in the speed model's terms.

One row per published figure (NeMo / Megatron-Bridge, NeMo AutoModel, torchtitan, torchtune,
Unsloth), each with a ``source_id``; :func:`load_rows` turns the scorable ones into
:class:`Row` (shape, setup, layout, GPU, links) and says why the others are kept as data only.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

from ..catalog import load_catalog
from ..catalog.records import GPU, Catalog
from ..errors import RigplanError
from .setup import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    Checkpointing,
    Layout,
    Method,
    Optimizer,
    Precision,
    TrainingSetup,
    check_layout,
)
from .shape import ModelShape, model_shape
from .speed import Interconnect, interconnect_for

GPUS_PER_NODE = 8
# DGX / HGX H100, B200 and the torchtitan / Trainy hosts: one 400 Gb/s NIC per GPU.
DGX_NETWORK = "ib-ndr"
# LoRA settings the sources do not print: NeMo 2.0's default LoRA is rank 32 on every linear
# (nemo.collections.llm.peft.LoRA: dim=32, target_modules linear_qkv/proj/fc1/fc2); PEFT-based
# stacks (AutoModel, torchtune, Unsloth) rank 16 [estimate, the common recipe default].
LORA_RANK = {"megatron": 32}
# Megatron's distributed optimizer shards optimizer states over data parallel (ZeRO-1); the
# tables' FSDP column > 0 means Megatron FSDP (ZeRO-3).
MEGATRON_ZERO = {False: 1, True: 3}
# How the notes column marks a MoE run with token dropping (the 25.09 tables print "tokendrop").
TOKEN_DROP_NOTE = "MoE: token drop"
# torchao float8 with row-wise scales (torchtitan async-TP table): a recipe rigplan does not offer
# (setup.Precision fp8 is per-tensor scaling), so such rows are kept as data, not scored.
UNMODELLED_RECIPE = "rowwise"


@dataclass(frozen=True, slots=True)
class Row:
    """A scored row of training_frameworks.csv, in the speed model's terms."""

    source_id: str
    framework: str
    label: str
    model_id: str
    gpu_id: str
    moe: bool
    measured: float  # tokens/s per GPU
    args: tuple[ModelShape, TrainingSetup, Layout, GPU, Interconnect]
    date: str = ""  # as printed: "2026-06", "2024-12-26", "2026"


def packaged_csv() -> str:
    return resources.files("rigplan.calibration").joinpath("measurements", "training_frameworks.csv").read_text("utf-8")


def _int(value: str, default: int = 1) -> int:
    value = value.strip()
    return int(value) if value and value.lower() not in ("n/a", "-") else default


def _setup(r: dict[str, str], dp: int) -> TrainingSetup:
    framework = r["framework"]
    method = Method(r["method"]) if r["method"] in {m.value for m in Method} else Method.PRETRAIN
    micro = _int(r["micro_batch"])
    global_batch = _int(r["global_batch"], micro * dp)
    accumulation = max(1, global_batch // max(1, micro * dp))
    if framework == "torchtitan" and _int(r["pp"]) > 1:
        # torchtitan splits the local batch into pipeline micro-batches of 1
        # (pipeline_parallel_microbatch_size default 1).
        micro, accumulation = 1, micro
    sharded = _int(r["fsdp"], 0) > 0
    zero = MEGATRON_ZERO[sharded] if framework == "megatron" else (3 if sharded or dp > 1 else 0)
    ckpt = r["checkpointing"] or ("full" if r["source_id"] == "torchtune-readme" else "none")
    optimizer = Optimizer.ADAMW
    if r["source_id"] == "torchtune-readme" and method is Method.FULL:
        optimizer = Optimizer.ADAMW_8BIT  # the single-device full recipe (README note)
    return TrainingSetup(
        method=method,
        precision=Precision(r["precision"]),
        optimizer=optimizer,
        seq_len=_int(r["seq_len"]),
        micro_batch=micro,
        grad_accumulation=accumulation,
        zero_stage=zero if method.trains_base else (3 if dp > 1 and framework != "megatron" else 0),
        hybrid_shard=False,
        checkpointing=Checkpointing(ckpt),
        offload=None,
        lora_rank=0 if method.trains_base else LORA_RANK.get(framework, DEFAULT_LORA_RANK),
        lora_targets=DEFAULT_LORA_TARGETS,
        moe_dropless=TOKEN_DROP_NOTE not in r["notes"],
    )


def _row(r: dict[str, str], catalog: Catalog, base: str) -> Row:
    """One CSV row → :class:`Row`.  Raises KeyError / ValueError / RigplanError when it cannot be scored."""
    model = catalog.models[r["model_id"]]
    gpu = catalog.gpus[r["gpu_id"]]
    shape = model_shape(model)
    gpus = _int(r["gpus"])
    gpn = min(gpus, GPUS_PER_NODE)
    layout = check_layout(
        shape,
        gpus,
        gpn,
        _int(r["tp"]),
        _int(r["pp"]),
        context_parallel=_int(r["cp"]),
        expert_parallel=_int(r["ep"]),
        virtual_pipeline=_int(r["vp"]),
    )
    setup = _setup(r, layout.data_parallel)
    link = interconnect_for((gpu,) * gpn, DGX_NETWORK, max(1, gpus // GPUS_PER_NODE))
    value = float(r["value"])
    measured = value / gpus if r["metric"] == "tokens_per_s" else value
    return Row(
        r["source_id"],
        base,
        r["model"],
        r["model_id"],
        r["gpu_id"],
        model.is_moe,
        measured,
        (shape, setup, layout, gpu, link),
        r["date"],
    )


def _scorable(r: dict[str, str]) -> str | None:
    """Why a row is kept as data but not scored (None: scored)."""
    if r["metric"] not in ("tokens_per_s_per_gpu", "tokens_per_s"):
        return f"metric {r['metric']} is a ratio, not a throughput"
    if not r["seq_len"] or not r["micro_batch"]:
        return "sequence length or batch not printed"
    if r["metric"] == "tokens_per_s" and _int(r["gpus"]) > 1:
        return "whole-job tokens/s of a multi-GPU run with the per-GPU split unstated"
    if UNMODELLED_RECIPE in r["fp8_recipe"]:
        return "FP8 row-wise scaling is not a precision rigplan models (fp8: per-tensor, mxfp8: 32-element blocks)"
    return None


@functools.cache
def load_rows(text: str | None = None) -> tuple[tuple[Row, ...], tuple[tuple[str, str], ...]]:
    """(scored rows, (label, reason) of rows kept as data only)."""
    catalog = load_catalog()
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for r in csv.DictReader(io.StringIO(text or packaged_csv())):
        label = f"{r['source_id']}: {r['model']} on {r['gpus']}x {r['gpu_id'] or r['gpu']} {r['precision']}"
        why = _scorable(r)
        if why is None and r["model_id"] not in catalog.models:
            why = f"model {r['model'] or '?'} not in the catalogue"
        if why is None and r["gpu_id"] not in catalog.gpus:
            why = f"GPU {r['gpu_id']} not in the catalogue"
        if why is not None:
            skipped.append((label, why))
            continue
        try:
            rows.append(_row(r, catalog, r["framework"].replace("torchtitan", "fsdp")))
        except (RigplanError, ValueError, KeyError) as exc:
            skipped.append((label, f"layout not modelled: {exc}"))
    return tuple(rows), tuple(skipped)
