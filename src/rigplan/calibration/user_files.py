"""Read a user's benchmark results: llama-bench (``-o json``, ``-o jsonl`` or the default markdown
table) and ``vllm bench serve --save-result`` JSON, each result mapped to rigplan's inputs."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFileError

# llama-bench -o json and vllm bench results nest 2–3 levels; deeper input is not a result file.
MAX_RESULT_DEPTH = 16
#: Parameter counts of a llama-bench model and a catalogue model agree within this fraction.
PARAM_MATCH_TOLERANCE = 0.02
#: llama-bench reports -ngl 99 for "every layer"; anything at or above a model's layer count is.
LLAMA_BENCH_ALL_LAYERS = 99


@dataclass(frozen=True, slots=True)
class UserMeasurement:
    """One result from a user's benchmark file, mapped to rigplan's inputs."""

    file: str
    engine: str
    rig: str
    model: str
    quant: str
    kind: str  # decode | prefill
    prompt_tokens: int
    output_tokens: int
    batch: int
    tokens_per_s: float
    split: str | None = None
    gpu_layers: int | None = None
    build: str = ""


_QUANT_WORD = {"small": "s", "medium": "m", "large": "l"}
_TEST = re.compile(r"^(pp|tg)(\d+)(?:\s*@\s*d(\d+))?$")


def quant_from_model_type(text: str) -> str | None:
    """llama-bench's type string → a quant id: "llama 8B Q4_K - Medium" → "q4_k_m"."""
    m = re.search(
        r"\b((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32)\b(?:\s*-\s*(Small|Medium|Large|XS|[\d.]+ bpw))?",
        text,
        re.IGNORECASE,
    )
    if not m:
        if re.search(r"all F32", text, re.IGNORECASE):
            return "f32"
        return None
    base = m.group(1).lower()
    word = (m.group(2) or "").lower()
    if word in _QUANT_WORD and base.endswith("_k"):
        return f"{base}_{_QUANT_WORD[word]}"
    if base in ("q4_k", "q5_k", "q3_k"):
        return base + "_m"
    return base


def _params_from_text(text: str) -> float | None:
    m = re.match(r"^\s*([\d.]+)\s*([BMK])\s*$", text.strip(), re.IGNORECASE)
    if not m:
        return None
    scale = {"b": 1e9, "m": 1e6, "k": 1e3}[m.group(2).lower()]
    return float(m.group(1)) * scale


def resolve_bench_model(model_type: str, n_params: float | None, filename: str, path: str, field: str) -> str:
    """A catalogue model for a llama-bench model (by parameter count and architecture name).

    Raises:
        DataFileError: no catalogue model matches (pass --model).
    """
    from ..catalog import load_catalog

    models = load_catalog().models
    arch_word = model_type.split()[0].lower() if model_type.split() else ""
    stem = Path(filename).name.lower() if filename else ""
    if stem:
        for mid in sorted(models, key=len, reverse=True):
            if mid in stem.replace("_", "-"):
                return mid
    if n_params:
        near = [
            m
            for m in models.values()
            if m.published_param_count and abs(m.published_param_count - n_params) / n_params <= PARAM_MATCH_TOLERANCE
        ]
        same_family = [m for m in near if arch_word.startswith(m.family) or m.family.startswith(arch_word[:4])]
        pick = same_family or near
        if pick:
            return sorted(pick, key=lambda m: m.id)[0].id
    raise DataFileError(path, field, f"no catalogue model matches {model_type!r}; pass --model")


def _int(value: Any, path: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataFileError(path, field, f"expected a whole number ≥ 0, got {value!r}")
    return value


def _positive(value: Any, path: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or not math.isfinite(value):
        raise DataFileError(path, field, f"expected a positive number, got {value!r}")
    return float(value)


def _rig_from_gpu_info(info: str, count: int | None, path: str, field: str) -> str:
    from ..catalog import load_catalog
    from ..rig import resolve_gpu

    names = [n.strip() for n in re.split(r"[,/]", info) if n.strip()]
    if not names:
        raise DataFileError(path, field, "no GPU named; pass --gpu")
    ids = []
    for name in names:
        try:
            ids.append(resolve_gpu(re.sub(r"(?i)^nvidia\s+", "", name), load_catalog()).id)
        except LookupError:
            raise DataFileError(path, field, f"unknown GPU {name!r}; pass --gpu") from None
    if count and len(ids) == 1 and count > 1:
        ids = ids * count
    return " + ".join(ids)


def _llama_bench_record(
    rec: Any, path: str, where: str, engine: str, gpu: str | None, model: str | None
) -> UserMeasurement | None:
    if not isinstance(rec, dict):
        raise DataFileError(path, where, "expected an object")
    for key in ("model_type", "n_prompt", "n_gen", "avg_ts"):
        if key not in rec:
            raise DataFileError(path, f"{where}.{key}", "missing (is this llama-bench -o json output?)")
    n_prompt = _int(rec["n_prompt"], path, f"{where}.n_prompt")
    n_gen = _int(rec["n_gen"], path, f"{where}.n_gen")
    depth = _int(rec.get("n_depth", 0), path, f"{where}.n_depth")
    tps = _positive(rec["avg_ts"], path, f"{where}.avg_ts")
    if (n_prompt > 0) == (n_gen > 0) or (n_prompt and depth):
        return None  # pg tests and prompts at depth: not a rigplan workload
    model_type = str(rec["model_type"])
    quant = quant_from_model_type(model_type)
    if quant is None:
        raise DataFileError(path, f"{where}.model_type", f"cannot tell the quant of {model_type!r}")
    mid = model or resolve_bench_model(
        model_type, rec.get("model_n_params"), str(rec.get("model_filename", "")), path, f"{where}.model_type"
    )
    rig = gpu or _rig_from_gpu_info(str(rec.get("gpu_info", "")), None, path, f"{where}.gpu_info")
    ngl = rec.get("n_gpu_layers")
    split = rec.get("split_mode")
    return UserMeasurement(
        file=path,
        engine=engine,
        rig=rig,
        model=mid,
        quant=quant,
        kind="decode" if n_gen else "prefill",
        prompt_tokens=depth if n_gen else n_prompt,
        output_tokens=n_gen,
        batch=1,
        tokens_per_s=tps,
        split=split if split in ("layer", "row") else None,
        gpu_layers=ngl if isinstance(ngl, int) and 0 <= ngl < LLAMA_BENCH_ALL_LAYERS else None,
        build=str(rec.get("build_commit", rec.get("build_number", ""))),
    )


def _vllm_record(
    doc: dict[str, Any], path: str, engine: str, gpu: str | None, model: str | None
) -> list[UserMeasurement]:
    from ..catalog import load_catalog
    from ..rig import resolve_model

    if gpu is None:
        raise DataFileError(
            path, "gpu", "vllm bench results do not name the GPUs; pass --gpu (a rig, e.g. '2x h100-sxm')"
        )
    if model is None:
        name = str(doc.get("model_id", ""))
        try:
            model = resolve_model(name, load_catalog()).id
        except LookupError:
            try:
                model = resolve_model(Path(name).name, load_catalog()).id
            except LookupError:
                raise DataFileError(path, "model_id", f"no catalogue model matches {name!r}; pass --model") from None
    completed = _positive(doc.get("completed"), path, "completed")
    prompt = round(_positive(doc.get("total_input_tokens"), path, "total_input_tokens") / completed)
    output = round(_positive(doc.get("total_output_tokens"), path, "total_output_tokens") / completed)
    concurrency = doc.get("max_concurrency") or 1
    batch = _int(concurrency, path, "max_concurrency") or 1
    quant = str(doc.get("quantization") or "bf16")
    measured = functools.partial(
        UserMeasurement, file=path, engine=engine, rig=gpu, model=model, quant=quant, prompt_tokens=prompt
    )
    tpot_s = _positive(doc.get("mean_tpot_ms"), path, "mean_tpot_ms") / 1000.0
    out = [measured(kind="decode", output_tokens=output, batch=batch, tokens_per_s=1.0 / tpot_s)]
    if batch == 1 and doc.get("mean_ttft_ms"):
        ttft_s = _positive(doc["mean_ttft_ms"], path, "mean_ttft_ms") / 1000.0
        out.append(measured(kind="prefill", output_tokens=0, batch=1, tokens_per_s=prompt / ttft_s))
    return out


def _markdown(text: str, path: str, engine: str, gpu: str | None, model: str | None) -> list[UserMeasurement]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 3:
        raise DataFileError(path, "table", "no llama-bench table found (expected | model | … | test | t/s |)")
    header = [c.strip().lower() for c in lines[0].strip("|").split("|")]
    for col in ("model", "test", "t/s"):
        if col not in header:
            raise DataFileError(path, f"column {col!r}", "missing from the table header")
    out = []
    for n, line in enumerate(lines[2:], start=3):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            raise DataFileError(path, f"row {n}", f"{len(cells)} cells, header has {len(header)}")
        row = dict(zip(header, cells, strict=True))
        test = _TEST.match(row["test"])
        if not test:
            continue
        kind, count, depth = test.group(1), int(test.group(2)), int(test.group(3) or 0)
        if kind == "pp" and depth:
            continue
        try:
            tps = float(row["t/s"].split("±")[0].strip())
        except ValueError:
            raise DataFileError(path, f"row {n}.t/s", f"not a number: {row['t/s']!r}") from None
        if not tps > 0:
            raise DataFileError(path, f"row {n}.t/s", f"must be positive, got {tps}")
        quant = quant_from_model_type(row["model"])
        if quant is None:
            raise DataFileError(path, f"row {n}.model", f"cannot tell the quant of {row['model']!r}")
        mid = model or resolve_bench_model(
            row["model"], _params_from_text(row.get("params", "")), "", path, f"row {n}.model"
        )
        if gpu is None:
            raise DataFileError(path, "gpu", "llama-bench's table does not name the GPUs; pass --gpu")
        ngl = row.get("ngl")
        split = row.get("sm")
        out.append(
            UserMeasurement(
                file=path,
                engine=engine,
                rig=gpu,
                model=mid,
                quant=quant,
                kind="decode" if kind == "tg" else "prefill",
                prompt_tokens=depth if kind == "tg" else count,
                output_tokens=count if kind == "tg" else 0,
                batch=1,
                tokens_per_s=tps,
                split=split if split in ("layer", "row") else None,
                gpu_layers=int(ngl) if ngl and ngl.isdigit() and int(ngl) < LLAMA_BENCH_ALL_LAYERS else None,
            )
        )
    return out


def parse_file(
    path: Path | str, *, engine: str | None = None, gpu: str | None = None, model: str | None = None
) -> list[UserMeasurement]:
    """Results of one benchmark file (format detected from the content).

    Raises:
        DataFileError: unreadable, not a known format, or a field missing or wrong (named).
    """
    p = Path(path)
    name = str(p)
    from ..textfiles import json_depth, read_text

    text = read_text(p)
    stripped = text.lstrip()
    if not stripped:
        raise DataFileError(name, "file", "empty")
    if stripped.startswith(("[", "{")):
        if json_depth(text) > MAX_RESULT_DEPTH:
            raise DataFileError(name, "json", f"nested deeper than {MAX_RESULT_DEPTH} levels; not a benchmark result")
        try:
            doc = json.loads(text)
            records = doc if isinstance(doc, list) else [doc]
        except json.JSONDecodeError:
            try:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise DataFileError(name, f"line {exc.lineno}", f"not JSON ({exc.msg})") from None
        if records and isinstance(records[0], dict) and ("mean_tpot_ms" in records[0] or "model_id" in records[0]):
            return [m for rec in records for m in _vllm_record(rec, name, engine or "vllm", gpu, model)]
        out = []
        for i, rec in enumerate(records):
            m = _llama_bench_record(rec, name, f"[{i}]", engine or "llama.cpp", gpu, model)
            if m is not None:
                out.append(m)
        if not out:
            raise DataFileError(name, "results", "no tg or pp results in the file")
        return out
    return _markdown(text, name, engine or "llama.cpp", gpu, model)
