"""Serving measurements as rows the batch model can predict, and the prediction itself.

Rows come from ``measurements/engine_benchmarks.csv`` (TensorRT-LLM's performance overview:
offline maximum throughput) and ``measurements/serving.csv`` (vLLM / SGLang / TensorRT-LLM
benchmarks: single-user decode, throughput at a concurrency, offline maximum throughput).
Each row keeps its source; :func:`predict` runs it through ``rigplan.estimate`` once for the
memory and placement, then through the serving model with any trial profile.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalog import load_catalog
from ..speed import hardware
from ..speed.batch import ServingProfile, chunked_schedule, finite_run_throughput, round_step_s, serving_step
from ..speed.decode import context_samples
from ..speed.serving import link_models

DECODE = "decode"  # per-user decode tok/s (1 / TPOT) at a concurrency
THROUGHPUT = "throughput"  # output tok/s of all requests at a concurrency ("max": offline)
MEASUREMENTS = "rigplan.calibration.measurements"
ENGINES_FILE = "engine_benchmarks.csv"
SERVING_FILE = "serving.csv"
#: engine_benchmarks.csv names → catalogue ids (the TensorRT-LLM perf-overview rows).
GPU_NAMES = {"H100 SXM 80GB": "h100-sxm", "H200 SXM 141GB": "h200-sxm", "B200 180GB": "b200"}
MODEL_NAMES = {
    "Llama-3.3-70B-Instruct": "llama-3.3-70b",
    "Llama-3.1-405B-Instruct": "llama-3.1-405b",
    "Llama-3.1-8B-Instruct": "llama-3.1-8b",
}
PRECISIONS = {"FP8": "fp8", "FP4": "fp4", "BF16": "bf16", "FP16": "f16"}


@dataclass(frozen=True, slots=True)
class ServingRow:
    ref: str  # file:line
    source_key: str  # one key per publication (leave-one-source-out groups)
    engine: str
    engine_version: str
    gpu: str
    gpu_count: int
    model: str
    quant: str
    kv_dtype: str | None
    metric: str
    concurrency: int | str  # "max" for offline maximum throughput
    prompt_tokens: int
    output_tokens: int
    measured: float
    moe: bool = False
    pipeline_parallel: int = 1
    #: Nodes the GPUs sit in (tensor parallel spans them when the row's TP does).
    nodes: int = 1
    #: ``--max-num-seqs`` as launched, where an offline ("max") row prints one; None: the
    #: engine's default.
    max_num_seqs: int | None = None
    #: Requests of an offline ("max") run as launched (``--num-prompts``, trtllm-bench's dataset
    #: size); None: not printed, the run is taken as steady state.
    num_prompts: int | None = None

    @property
    def fit_engine(self) -> str:
        return self.engine

    @property
    def rig(self) -> str:
        if self.nodes > 1:
            return f"{self.nodes} nodes x {self.gpu_count // self.nodes}x {self.gpu}"
        return f"{self.gpu_count}x {self.gpu}" if self.gpu_count > 1 else self.gpu

    def doc(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source_key,
            "engine_version": self.engine_version,
            "rig": self.rig,
            "model": self.model,
            "quant": self.quant,
            "metric": self.metric,
            "concurrency": str(self.concurrency),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "measured": self.measured,
        }


def kind_of(row: ServingRow) -> str:
    """The hardware kind of a row's GPU ("hbm/hopper")."""
    return hardware.hardware_kind(load_catalog().gpus[row.gpu])


def _read(name: str) -> list[dict[str, str]]:
    folder = resources.files(MEASUREMENTS)
    entry = folder.joinpath(name)
    if not entry.is_file():
        return []
    return list(csv.DictReader(io.StringIO(entry.read_text(encoding="utf-8"))))


def _trtllm_overview_rows() -> list[ServingRow]:
    out = []
    for i, r in enumerate(_read(ENGINES_FILE)):
        if r["engine"] != "TensorRT-LLM" or r["metric"] != "total_output_throughput":
            continue
        gpu, model = GPU_NAMES.get(r["gpu"]), MODEL_NAMES.get(r["model"])
        quant = PRECISIONS.get(r["precision"])
        if gpu is None or model is None or quant is None:
            continue
        out.append(
            ServingRow(
                ref=f"{ENGINES_FILE}:{i + 2}",
                source_key=r["source"].split(" @")[0],
                engine="tensorrt-llm",
                engine_version=r["engine_version"],
                gpu=gpu,
                gpu_count=int(r["gpu_count"]),
                model=model,
                quant=quant,
                kv_dtype="fp8" if quant in ("fp8", "fp4") else None,
                metric=THROUGHPUT,
                concurrency="max",
                prompt_tokens=int(r["input_len"]),
                output_tokens=int(r["output_len"]),
                measured=float(r["value"]),
            )
        )
    return out


@functools.cache
def rows() -> tuple[ServingRow, ...]:
    """Every serving row the fit and the accuracy report use."""
    from .serving_csv import serving_csv_rows

    found = serving_csv_rows(_read(SERVING_FILE), SERVING_FILE)
    if not found:  # serving.csv holds the perf-overview's H100 columns too
        found = _trtllm_overview_rows()
    catalog = load_catalog()
    return tuple(
        r if r.moe == catalog.models[r.model].is_moe else _with_moe(r, catalog.models[r.model].is_moe) for r in found
    )


def _with_moe(row: ServingRow, moe: bool) -> ServingRow:
    import dataclasses

    return dataclasses.replace(row, moe=moe)


@dataclass(frozen=True, slots=True)
class _Prepared:
    estimate: Any
    work: Any
    links: Any
    kv_element_bytes: float
    batch: int


def _estimate(row: ServingRow, batch: int | str) -> Any:
    """``rigplan.estimate`` of the row's setup at ``batch``."""
    from ..estimate import estimate

    return estimate(
        row.model,
        row.rig,
        engine=row.engine,
        quant=row.quant,
        kv_dtype=row.kv_dtype,
        prompt_tokens=row.prompt_tokens,
        output_tokens=row.output_tokens,
        batch=batch,
        pipeline_parallel=row.pipeline_parallel if row.pipeline_parallel > 1 else None,
        tensor_parallel=row.gpu_count // row.pipeline_parallel if row.pipeline_parallel > 1 or row.nodes > 1 else None,
        use_user_calibration=False,
        force=True,
    )


@functools.cache
def _prepare(row: ServingRow) -> _Prepared:
    from .. import speed
    from ..memory.kv_cache import honors_window
    from ..speed.work import forward_work

    e = _estimate(row, row.concurrency)
    if row.max_num_seqs is not None and row.concurrency == "max" and e.memory.kv_pool_tokens is not None:
        # the offline batch is what the KV pool holds, capped by max_num_seqs as launched rather
        # than the engine's default (ROCm MAD's config.csv sets it to the number of prompts)
        pool = e.memory.kv_pool_tokens // (row.prompt_tokens + row.output_tokens)
        batch = max(1, min(row.max_num_seqs, pool))
        if batch != e.workload.batch:
            e = _estimate(row, batch)
    work = forward_work(e.model, e.quant, e.memory.placement, honors_window(e.model, e.engine.family))
    links = link_models(e.rig, work, e.link.kind, e.link.lanes, e.link.p2p, True)
    kv = speed._kv_element_bytes(e.model, e.memory, speed.SpeedWorkload(0, 0, 1, 1, e.workload.kv_dtype))
    return _Prepared(e, work, links, kv, e.workload.batch)


def predict(row: ServingRow, profile: ServingProfile) -> float:
    """The row's metric predicted with ``profile`` (tokens/s): the same formulas as
    :func:`rigplan.speed.serving.serving_speed`, only the one the row measured."""
    p = _prepare(row)
    e = p.estimate

    def step(decode: float, context: int, prefill: float = 0.0, position: float = 0.0) -> float:
        return serving_step(
            profile, p.work, e.model, e.quant, p.kv_element_bytes, p.links, decode, context, prefill, position
        ).total_s

    if row.metric == DECODE:
        samples = context_samples(row.prompt_tokens, row.output_tokens)
        return len(samples) / sum(step(p.batch, c) for c in samples)
    budget = profile.behaviour.token_budget(e.rig.gpus[0])
    mid = row.prompt_tokens + row.output_tokens // 2

    def at(batch: int) -> float:
        plan = chunked_schedule(budget, batch, row.prompt_tokens, row.output_tokens)
        return plan.decode_per_step / round_step_s(step, plan, budget, row.prompt_tokens, mid, e.model.is_moe)

    if row.concurrency == "max" and row.num_prompts:
        return finite_run_throughput(at, p.batch, row.num_prompts)
    return at(p.batch)
