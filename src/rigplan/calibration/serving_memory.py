"""How far the engines' start-up memory model is from their logs (measurements/serving_memory.csv).

Every row is a start-up log: the weights the engine loaded, the KV cache GiB it allocated and the
tokens that pool holds.  :func:`predict` runs the row's model, GPU, layout, quant and memory
fraction through :func:`rigplan.memory.estimate_memory`; :func:`memory_accuracy` reports

- **held-out sources**: the profiling constants are fitted on one source (llm-d-planner's vLLM
  0.19.0 sweep); every other source is a log the model never saw;
- **leave-one-model-out** inside that source: the three profiling constants refitted without
  the model's rows (:func:`fit_profile`), then the model's rows predicted.

Rows whose model or GPU is not in the catalogue, or whose quant rigplan has no id for, are
skipped (they stay in the data with their source).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from ..catalog import load_catalog
from ..engines import get_engine
from ..errors import RigplanError
from ..memory import Workload, estimate_memory, serving
from ..memory.kv_cache import kv_bytes_per_token
from ..placement import place
from ..quant import get_quant
from ..rig import parse_rig
from ..units import GIB

MEASUREMENTS = "rigplan.calibration.measurements"
MEMORY_FILE = "serving_memory.csv"
#: The source the profiling constants are fitted on; all others are held out.
FIT_SOURCE = "llm-d-planner-accuracy-v0.19.0"
#: Grid the leave-one-model-out refit searches (base GiB, sampler copies, forward rows).
FIT_GRID = (
    tuple(x / 100 for x in range(0, 61, 3)),
    tuple(x / 10 for x in range(25, 46, 1)),
    tuple(x / 10 for x in range(20, 61, 2)),
)
#: vLLM V0 profiled max_model_len tokens at once (no chunked prefill below 32k) and 256 sequences.
V0_PROFILE_SEQS = 256


@dataclass(frozen=True, slots=True)
class MemoryRow:
    ref: str
    source: str
    date: str
    engine: str
    version: str
    gpu: str
    tensor_parallel: int
    pipeline_parallel: int
    model: str
    quant: str
    kv_dtype: str
    fraction: float | None
    max_model_len: int | None
    weights_gib: float | None
    kv_gib: float | None
    kv_tokens: int | None
    activation_gib: float | None

    @property
    def v0(self) -> bool:
        return "V0" in self.version

    @property
    def sort_sampler(self) -> bool:
        """vLLM V1 before 0.17: its profiling sampler sorted the logits (memory/serving.py).
        The printed version decides; a log without one goes by its date."""
        if self.engine != "vllm" or self.v0:
            return False
        found = re.search(r"(\d+)\.(\d+)(?:\.\d+)?", self.version)
        if found:
            return (int(found.group(1)), int(found.group(2))) < serving.VLLM_TRITON_SAMPLER_VERSION
        return self.date < serving.VLLM_TRITON_SAMPLER_DATE


@dataclass(frozen=True, slots=True)
class MemoryPrediction:
    row: MemoryRow
    weights_gib: float
    kv_gib: float
    kv_tokens: int
    activation_gib: float

    def errors(self) -> dict[str, float]:
        """Relative error of each printed figure (predicted / measured − 1)."""
        out: dict[str, float] = {}
        pairs = (
            ("weights", self.weights_gib, self.row.weights_gib),
            ("kv_gib", self.kv_gib, self.row.kv_gib),
            ("kv_tokens", self.kv_tokens, self.row.kv_tokens),
        )
        for name, predicted, measured in pairs:
            if measured:
                out[name] = predicted / measured - 1
        return out


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _parse(record: dict[str, str], line: int) -> MemoryRow | None:
    catalog = load_catalog()
    if record["engine"] not in ("vllm", "sglang") or record["model"] not in catalog.models:
        return None
    if record["gpu"] not in catalog.gpus:
        return None
    notes = record["notes"]
    if "dtype float32" in notes:
        return None  # an f32 model: rigplan's quant ids start at 16-bit
    try:
        quant = get_quant(record["quant"]).id
    except RigplanError:
        return None
    pp = re.search(r"\bpp=(\d+)", notes)
    kv = "fp8" if re.search(r"kv_cache_dtype fp8\b", notes) else "bf16"
    tokens = _float(record["kv_tokens"])
    max_len = _float(record["max_model_len"])
    return MemoryRow(
        ref=f"{MEMORY_FILE}:{line}",
        source=record["source_id"],
        date=record["date"],
        engine=record["engine"],
        version=record["engine_version"],
        gpu=record["gpu"],
        tensor_parallel=int(record["tp"]),
        pipeline_parallel=int(pp.group(1)) if pp else 1,
        model=record["model"],
        quant=quant,
        kv_dtype=kv,
        fraction=_float(record["gpu_memory_utilization"]),
        max_model_len=int(max_len) if max_len else None,
        weights_gib=_float(record["weights_gib"]),
        kv_gib=_float(record["kv_cache_gib"]),
        kv_tokens=int(tokens) if tokens else None,
        activation_gib=_float(record["activation_peak_gib"]),
    )


def memory_rows() -> list[MemoryRow]:
    """The start-up logs rigplan can predict, with their file lines."""
    text = resources.files(MEASUREMENTS).joinpath(MEMORY_FILE).read_text(encoding="utf-8")
    rows = []
    for line, record in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        row = _parse(record, line)
        if row is not None:
            rows.append(row)
    return rows


def _row_profile(row: MemoryRow, profile: serving.ProfileRun) -> serving.ProfileRun:
    """The profiling run of the row's vLLM: V0's whole-prompt run, or V1's sort-based sampler."""
    if row.v0 and row.max_model_len:
        return dataclasses.replace(profile, tokens=row.max_model_len, seqs=V0_PROFILE_SEQS)
    if row.sort_sampler:
        return dataclasses.replace(profile, sampler_copies=serving.VLLM_SORT_SAMPLER_LOGIT_COPIES)
    return profile


def predict(row: MemoryRow, profile: serving.ProfileRun = serving.VLLM_PROFILE) -> MemoryPrediction:
    """The row's start-up memory as rigplan models it (the smallest rank's pool, as the engine)."""
    catalog = load_catalog()
    model, engine = catalog.models[row.model], get_engine(row.engine)
    n = row.tensor_parallel * row.pipeline_parallel
    rig = parse_rig(f"{n}x {row.gpu}", catalog)
    placement = place(model, rig, engine, tensor_parallel=row.tensor_parallel, pipeline_parallel=row.pipeline_parallel)
    profile = _row_profile(row, profile)
    workload = Workload(context=row.max_model_len or 8192, kv_dtype=row.kv_dtype, memory_fraction=row.fraction)
    mem = estimate_memory(model, get_quant(row.quant), engine, placement, workload)
    ranks = []
    for share, device in zip(placement.devices, mem.devices, strict=True):
        rank = serving.ServingShare(
            device.gpu, device.weights_bytes, len(share.layers), placement.tensor_parallel, share.holds_output
        )
        start = serving.startup_memory(row.engine, model, rank, row.fraction, profile=profile)
        per_token = kv_bytes_per_token(model, share.layers, row.kv_dtype, shard=share.shard)
        ranks.append((serving.pool_tokens(start.kv_cache_bytes, per_token), start))
    tokens, start = min(ranks, key=lambda r: r[0])
    return MemoryPrediction(
        row, start.weights_bytes / GIB, start.kv_cache_bytes / GIB, tokens, start.activation_bytes / GIB
    )


def _logged_activation_bytes(row: MemoryRow, profile: serving.ProfileRun) -> int:
    """The activation peak as the row's log prints it: rank 0's (the sampler runs there only
    without pipeline parallelism)."""
    catalog = load_catalog()
    model, gpu = catalog.models[row.model], catalog.gpus[row.gpu]
    samples = row.pipeline_parallel == 1
    profile = _row_profile(row, profile)
    return serving.vllm_activation_bytes(model, gpu, row.tensor_parallel, samples=samples, profile=profile)


def _activation_error(rows: Sequence[MemoryRow], profile: serving.ProfileRun) -> float:
    errors = [abs(_logged_activation_bytes(r, profile) / GIB / r.activation_gib - 1) for r in rows if r.activation_gib]
    return sum(errors) / len(errors) if errors else 0.0


def fit_profile(rows: Sequence[MemoryRow]) -> serving.ProfileRun:
    """The profiling constants that best match the rows' logged activation peaks (grid search,
    mean relative error)."""
    fit_rows = [r for r in rows if r.activation_gib and r.engine == "vllm" and not r.v0]
    best: tuple[float, serving.ProfileRun] | None = None
    for base, copies, forward in itertools.product(*FIT_GRID):
        profile = serving.ProfileRun(base * GIB, copies, forward)
        error = _activation_error(fit_rows, profile)
        if best is None or error < best[0]:
            best = (error, profile)
    assert best is not None
    return best[1]


@dataclass(frozen=True, slots=True)
class MemoryAccuracy:
    """Mean |relative error| of weights, KV GiB and KV tokens, with the rows behind each."""

    group: str
    rows: int
    weights: float | None
    kv_gib: float | None
    kv_tokens: float | None
    worst: str


def summarize(group: str, predictions: Iterable[MemoryPrediction]) -> MemoryAccuracy:
    preds = list(predictions)
    by_metric: dict[str, list[tuple[float, str]]] = {"weights": [], "kv_gib": [], "kv_tokens": []}
    for p in preds:
        for name, error in p.errors().items():
            by_metric[name].append((error, p.row.ref))

    def mean(name: str) -> float | None:
        values = by_metric[name]
        return sum(abs(e) for e, _ in values) / len(values) if values else None

    all_errors = [item for values in by_metric.values() for item in values]
    worst = max(all_errors, key=lambda item: abs(item[0]), default=(0.0, "-"))
    return MemoryAccuracy(
        group, len(preds), mean("weights"), mean("kv_gib"), mean("kv_tokens"), f"{worst[1]} {worst[0]:+.1%}"
    )


def held_out_sources(rows: Sequence[MemoryRow]) -> list[MemoryPrediction]:
    """Rows of every source but the one the constants were fitted on (shipped constants)."""
    return [predict(r) for r in rows if r.source != FIT_SOURCE]


def leave_one_model_out(rows: Sequence[MemoryRow]) -> list[MemoryPrediction]:
    """The fitted source's rows, each model predicted by constants refitted without it."""
    fitted = [r for r in rows if r.source == FIT_SOURCE]
    out: list[MemoryPrediction] = []
    for model in sorted({r.model for r in fitted}):
        profile = fit_profile([r for r in fitted if r.model != model])
        out.extend(predict(r, profile) for r in fitted if r.model == model)
    return out


def memory_accuracy() -> list[MemoryAccuracy]:
    """The report: in-sample, leave-one-model-out, and every held-out source."""
    rows = memory_rows()
    fitted = [predict(r) for r in rows if r.source == FIT_SOURCE]
    held = held_out_sources(rows)
    report = [summarize(f"fitted ({FIT_SOURCE})", fitted), summarize("leave-one-model-out", leave_one_model_out(rows))]
    report.append(summarize("held-out sources", held))
    for source in sorted({p.row.source for p in held}):
        report.append(summarize(f"  {source}", (p for p in held if p.row.source == source)))
    return report


def main() -> None:
    """Print the report (``python -m rigplan.calibration.serving_memory``)."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    print(f"{'group':48} {'rows':>4} {'weights':>8} {'KV GiB':>8} {'KV tok':>8}  worst")
    for a in memory_accuracy():
        print(f"{a.group:48} {a.rows:4} {pct(a.weights):>8} {pct(a.kv_gib):>8} {pct(a.kv_tokens):>8}  {a.worst}")


if __name__ == "__main__":
    main()
