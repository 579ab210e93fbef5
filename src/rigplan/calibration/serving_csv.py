"""Rows of ``measurements/serving.csv`` (published vLLM / SGLang / TensorRT-LLM serving figures)
as :class:`~rigplan.calibration.serving_data.ServingRow`; rows the model cannot take (a GPU or
model not in the catalogue, a metric it does not predict, an unknown concurrency, a p99) are
skipped, never guessed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..catalog import load_catalog

if TYPE_CHECKING:
    from ..catalog.records import Catalog
    from .serving_data import ServingRow

ENGINES = frozenset({"vllm", "sglang", "tensorrt-llm"})
QUANTS = {"fp8": "fp8", "bf16": "bf16", "f16": "f16", "fp4": "fp4", "mxfp4": "mxfp4", "int4-awq": "int4"}
#: Metrics the batch model predicts: output tok/s of all requests; per-user decode (1 / TPOT);
#: a static batch's end-to-end latency (e2e_latency_ms), read as its output tok/s.
MS_PER_S = 1000.0
STATS = frozenset({"mean", "median"})
#: Speculative decoding (MTP, EAGLE, draft models) emits several tokens per step: not the batch
#: model's one token per step, so such rows are left out.
SPECULATIVE = re.compile(r"\bmtp\b|specul|eagle|draft", re.IGNORECASE)
#: ``--max-num-seqs N`` in an offline row's flags: the batch cap it was launched with (ROCm MAD's
#: scripts/vllm/config.csv sets it to the number of prompts, far above vLLM's default 1024).
MAX_NUM_SEQS_FLAG = re.compile(r"--max-num-seqs[ =](\d+)")
#: Models published under another name with the same architecture (config.json): DeepSeek-R1
#: is DeepSeek-V3's network post-trained (deepseek-ai/DeepSeek-R1 config.json = V3's).
SAME_ARCHITECTURE = {"deepseek-r1": "deepseek-v3"}
#: NVIDIA's ModelOpt checkpoints (nvidia/*-FP8, nvidia/*-FP4, which TensorRT-LLM's perf-overview
#: v1.0 ran) carry ``"kv_cache_quant_algo": "FP8"`` in hf_quant_config.json, and the engine
#: builds its KV cache in that type unless told otherwise: an FP8 cache for rows that name such
#: a checkpoint and leave the KV type blank.  Sources: ModelOpt's export
#: (modelopt/torch/export, convert_hf_config docstring: quant_algo FP8 with kv_cache_quant_algo
#: FP8), a check script of nvidia/Llama-3.3-70B-Instruct-NVFP4 @ec8feebb that asserts
#: quant_algo NVFP4 / kv_cache_quant_algo FP8, and perf-overview.md @00f37686 ("weights
#: quantized using ModelOpt and published by NVIDIA").
MODELOPT_CHECKPOINT = re.compile(r"modelopt", re.IGNORECASE)
MODELOPT_KV_DTYPE = "fp8"
MODELOPT_QUANTS = frozenset({"fp8", "fp4"})
#: DeepSeek V3/R1 (multi-head latent attention, 256 fine-grained experts) on vLLM and SGLang
#: builds from before April 2025 decoded one user at about half the speed of later builds on
#: the same hardware, and the batch model describes the later ones.  The rows show it: 8x H100,
#: DeepSeek-V3 AWQ, vLLM, concurrency 1 — 30 ms median ITL on vLLM 0.7.3 (dzhsurf/deepseek-v3-
#: r1-deploy-and-benchmarks, March 2025) against 16.1 ms TPOT in mid-2025
#: (tenstorrent/tt-inference-server#356); SGLang 0.4.1.post2 printed 30 tok/s at batch 1 on
#: 8 GPUs (sglang#2643, Dec 2024) where SGLang 0.5.7 runs 8 users at 12.8 ms TPOT on 8x H200
#: (InferenceX#870).  The kernels that changed in between (FlashMLA / FlashInfer MLA decode,
#: DeepGEMM and CUTLASS block-FP8 GEMMs, Marlin MoE for AWQ) arrived in the spring-2025
#: releases [A: vLLM 0.8 and SGLang 0.4.3-0.4.5 release notes, not re-read here].  Such rows
#: stay in serving.csv, as printed, and out of the fit; tests/calibration keeps them as known
#: misses with this reason.
#: GPUs per node of the rows' servers (HGX / OAM baseboards hold 8): more GPUs are several nodes.
GPUS_PER_NODE = 8
LEGACY_MLA_ENGINES = frozenset({"vllm", "sglang"})
LEGACY_MLA_BEFORE = "2025-04"


def _kv_dtype(r: dict[str, str]) -> str | None:
    """The row's KV cache type: as printed, else the checkpoint's (ModelOpt FP8/FP4: FP8)."""
    if r["kv_dtype"]:
        return r["kv_dtype"]
    if r["quant"] in MODELOPT_QUANTS and MODELOPT_CHECKPOINT.search(r["notes"]):
        return MODELOPT_KV_DTYPE
    return None


def legacy_mla_build(record: dict[str, str], is_mla: bool) -> bool:
    """Whether a row is DeepSeek-class MLA on a vLLM / SGLang build older than the model's kernels
    (dated before :data:`LEGACY_MLA_BEFORE`; a row dated only by its year is not judged)."""
    date = record["date"].strip()
    return record["engine"] in LEGACY_MLA_ENGINES and is_mla and len(date) >= 7 and date[:7] < LEGACY_MLA_BEFORE


def _model_id(record: dict[str, str], catalog: Catalog) -> str | None:
    """The row's catalogue model, or None (not in the catalogue, or a legacy MLA build)."""
    name = record["model"]
    model = name if name in catalog.models else SAME_ARCHITECTURE.get(name, "")
    if model not in catalog.models or legacy_mla_build(record, catalog.models[model].is_mla):
        return None
    return model


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _measured(metric: str, value: str, concurrency: int | str, output: int) -> tuple[str, float] | None:
    """(DECODE or THROUGHPUT, tokens/s) of a printed figure, or None (a metric not predicted)."""
    from .serving_data import DECODE, THROUGHPUT

    try:
        number = float(value)
    except ValueError:
        return None
    if metric == "output_tok_s":
        return THROUGHPUT, number
    if metric == "tpot_ms" and number > 0:
        return DECODE, MS_PER_S / number
    if metric == "per_user_tok_s":
        return DECODE, number
    if metric == "e2e_latency_ms" and number > 0 and isinstance(concurrency, int):
        # a static batch (vLLM benchmark_latency): every request's output over the batch's time
        return THROUGHPUT, concurrency * output * MS_PER_S / number
    return None


def serving_csv_rows(records: list[dict[str, str]], name: str) -> list[ServingRow]:
    """The predictable rows of serving.csv."""
    from .serving_data import ServingRow

    catalog = load_catalog()
    out: list[ServingRow] = []
    seen: set[tuple[object, ...]] = set()
    for i, r in enumerate(records):
        metric, value = r["metric"], r["value"]
        if r["engine"] not in ENGINES or r["stat"] not in STATS or r["gpu"] not in catalog.gpus:
            continue
        if SPECULATIVE.search(r["flags"]) or SPECULATIVE.search(r["notes"]):
            continue
        model = _model_id(r, catalog)
        if model is None or r["quant"] not in QUANTS:
            continue
        n, tp, pp = _int(r["n_gpus"]), _int(r["tp"]) or 1, _int(r["pp"]) or 1
        prompt, output = _int(r["input_len"]), _int(r["output_len"])
        conc = r["concurrency"].strip()
        concurrency: int | str | None = "max" if conc == "max" else _int(conc)
        if n is None or tp * pp != n or prompt is None or not output or concurrency in (None, 0):
            continue
        assert concurrency is not None
        read = _measured(metric, value, concurrency, output)
        if read is None:
            continue
        kind, measured = read
        seqs = MAX_NUM_SEQS_FLAG.search(r["flags"]) if concurrency == "max" else None
        key = (r["source_id"], r["gpu"], n, model, r["quant"], concurrency, prompt, output, kind, r["engine_version"])
        if key in seen:  # one figure printed twice (TPOT and tok/s per user)
            continue
        seen.add(key)
        out.append(
            ServingRow(
                ref=f"{name}:{i + 2}",
                source_key=r["source_id"],
                engine=r["engine"],
                engine_version=r["engine_version"],
                gpu=r["gpu"],
                gpu_count=n,
                model=model,
                quant=QUANTS[r["quant"]],
                kv_dtype=_kv_dtype(r),
                metric=kind,
                concurrency=concurrency,
                prompt_tokens=prompt,
                output_tokens=output,
                measured=measured,
                pipeline_parallel=pp,
                nodes=-(-n // GPUS_PER_NODE),
                max_num_seqs=int(seqs.group(1)) if seqs else None,
                num_prompts=_int(r["num_prompts"]) if concurrency == "max" else None,
            )
        )
    return out
