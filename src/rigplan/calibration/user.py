"""The user's own calibration: read llama-bench / vllm bench results, fit, store, apply.

``rigplan calibrate FILE...`` parses llama-bench output (``-o json``, ``-o jsonl`` or the
default markdown table) and ``vllm bench serve --save-result`` JSON, compares every result with
rigplan's prediction for the same model, quant, rig and workload, and stores the geometric-mean
correction per engine and GPU type in the user config dir (platformdirs).  Later estimates on
the same engine and GPUs use it and say "calibrated on your results".

The store is one JSON file, rewritten atomically (a temporary file in the same folder, fsync,
``os.replace``) under an exclusive lock, so a crash or a second writer never leaves it half
written or loses the other writer's rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFileError, RigplanError
from ..speed.profile import Spread, UserCorrection

APP_NAME = "rigplan"
STORE_FILE = "calibration.json"
LOCK_FILE = "calibration.lock"
SCHEMA = 1
#: Residual quantiles of the user's rows that bound their ranges (as the shipped profiles).
USER_QUANTILES = (0.10, 0.90)
#: Fewer rows than this: the range is ±(largest deviation, at least 5 %), not quantiles [D].
MIN_ROWS_FOR_QUANTILES = 5
MIN_USER_HALF_WIDTH = math.log(1.05)
# A user's result more than 5× off rigplan's estimate is a mislabelled file (wrong model, GPU or
# unit), not a calibration: the worst held-out residual of the shipped fit is about 2×.
MAX_USER_RATIO = 5.0
#: How long a writer waits for the lock before giving up (seconds).
LOCK_TIMEOUT_S = 30.0
LOCK_POLL_S = 0.05
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


# ---------------------------------------------------------------------------------------------
# Where the store lives, and how it is written safely
# ---------------------------------------------------------------------------------------------


def config_dir() -> Path:
    """rigplan's folder in the user config dir (``~/.config/rigplan`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def store_path() -> Path:
    return config_dir() / STORE_FILE


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/calibration.lock`` (fcntl where available, else an
    O_EXCL lock file), so read-modify-write cycles of two writers do not interleave."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        with open(path, "a+") as handle:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DataFileError(
                            str(path), "lock", "another rigplan is writing the calibration; try again"
                        ) from None
                    time.sleep(LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return
    deadline = time.monotonic() + LOCK_TIMEOUT_S  # pragma: no cover - Windows
    while True:  # pragma: no cover
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise DataFileError(
                    str(path), "lock", "another rigplan is writing the calibration; try again"
                ) from None
            time.sleep(LOCK_POLL_S)
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        os.close(fd)
        os.unlink(path)


def _write_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` via a uniquely named temp file and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_store(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": SCHEMA, "entries": []}
    from ..textfiles import read_json

    try:
        doc = read_json(path)
    except DataFileError as exc:
        raise DataFileError(
            str(path), "json", f"unreadable ({exc}); `rigplan calibrate --reset` starts again"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise DataFileError(str(path), "entries", "missing; `rigplan calibrate --reset` starts again")
    if doc.get("schema") != SCHEMA:
        raise DataFileError(str(path), "schema", f"expected {SCHEMA}, got {doc.get('schema')!r}")
    return doc


def _spread_from(values: Any, path: str, where: str) -> Spread | None:
    if values is None:
        return None
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise DataFileError(path, where, f"expected [low, high], got {values!r}")
    return Spread(float(values[0]), float(values[1]))


def _correction(entry: Any, path: str, i: int) -> UserCorrection:
    where = f"entries[{i}]"
    if not isinstance(entry, dict):
        raise DataFileError(path, where, "expected an object")
    for key in ("engine", "gpus", "rows", "fitted_on"):
        if key not in entry:
            raise DataFileError(path, f"{where}.{key}", "missing")
    factors = {}
    for key in ("decode_factor", "prefill_factor"):
        v = entry.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not v > 0):
            raise DataFileError(path, f"{where}.{key}", f"expected a positive number, got {v!r}")
        factors[key] = None if v is None else float(v)
    gpus = entry["gpus"]
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        raise DataFileError(path, f"{where}.gpus", "expected a list of GPU ids")
    rows = entry["rows"]
    if not isinstance(rows, list):
        raise DataFileError(path, f"{where}.rows", "expected a list")
    return UserCorrection(
        engine=str(entry["engine"]),
        gpus=tuple(gpus),
        decode_factor=factors["decode_factor"],
        prefill_factor=factors["prefill_factor"],
        decode_spread=_spread_from(entry.get("decode_spread"), path, f"{where}.decode_spread"),
        prefill_spread=_spread_from(entry.get("prefill_spread"), path, f"{where}.prefill_spread"),
        rows=len(rows),
        fitted_on=str(entry["fitted_on"]),
    )


def engine_key(engine: str) -> str:
    """Calibrations are shared by engines that run the same code (ollama = llama.cpp)."""
    from ..engines import LLAMA_CPP, get_engine

    eng = get_engine(engine)
    return LLAMA_CPP if eng.family == LLAMA_CPP else eng.id


_CACHE: dict[tuple[str, int, int, int], list[UserCorrection]] = {}


def stored_corrections(path: Path | None = None) -> list[UserCorrection]:
    """Every correction in the store (empty when there is none).

    Raises:
        DataFileError: the store exists but is not readable as rigplan's calibration.
    """
    path = path or store_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return []
    key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if key not in _CACHE:
        doc = _read_store(path)
        _CACHE.clear()
        _CACHE[key] = [_correction(e, str(path), i) for i, e in enumerate(doc["entries"])]
    return _CACHE[key]


def load_user_profile(engine: str, gpu_ids: list[str]) -> UserCorrection | None:
    """The user's correction for this engine on these GPUs, or None.

    Raises:
        DataFileError: the stored calibration is corrupt (the message says how to reset it).
    """
    try:
        key = engine_key(engine)
    except RigplanError:
        return None
    for c in stored_corrections():
        if c.engine == key and set(gpu_ids) <= set(c.gpus):
            return c
    return None


# ---------------------------------------------------------------------------------------------
# Parsing benchmark files
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Fitting and storing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    engine: str
    gpus: tuple[str, ...]
    decode_factor: float | None
    prefill_factor: float | None
    rows: list[dict[str, Any]]
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "gpus": list(self.gpus),
            "decode_factor": self.decode_factor,
            "prefill_factor": self.prefill_factor,
            "rows": self.rows,
            "store": self.path,
        }


def _predict(m: UserMeasurement) -> float:
    from ..estimate import estimate

    e = estimate(
        m.model,
        m.rig,
        quant=m.quant,
        engine=m.engine,
        prompt_tokens=m.prompt_tokens,
        output_tokens=m.output_tokens,
        batch=m.batch,
        split=m.split,
        gpu_layers=m.gpu_layers,
        use_user_calibration=False,
        force=True,
    )
    value = e.speed.decode_tokens_per_s if m.kind == "decode" else e.speed.prefill_tokens_per_s
    if value is None:
        raise DataFileError(m.file, m.kind, "rigplan has no prediction for this result")
    return value


def _factor_and_spread(logs: Sequence[float]) -> tuple[float | None, list[float] | None]:
    if not logs:
        return None, None
    mean = sum(logs) / len(logs)
    dev = sorted(x - mean for x in logs)
    if len(dev) >= MIN_ROWS_FOR_QUANTILES:
        lo = dev[int(USER_QUANTILES[0] * (len(dev) - 1))]
        hi = dev[math.ceil(USER_QUANTILES[1] * (len(dev) - 1))]
    else:
        lo, hi = dev[0], dev[-1]
    lo, hi = min(lo, -MIN_USER_HALF_WIDTH), max(hi, MIN_USER_HALF_WIDTH)
    return math.exp(mean), [round(lo, 5), round(hi, 5)]


def calibrate(
    files: Sequence[Path | str],
    *,
    engine: str | None = None,
    gpu: str | None = None,
    model: str | None = None,
    today: dt.date | None = None,
) -> list[CalibrationResult]:
    """Parse ``files``, fit a correction per engine and GPU set, merge it into the store.

    Raises:
        DataFileError: a bad file (named with the field), or a corrupt store.
        RigplanError: names in the files rigplan does not know.
    """
    from ..catalog import load_catalog
    from ..rig import parse_rig

    measurements = [m for f in files for m in parse_file(f, engine=engine, gpu=gpu, model=model)]
    if not measurements:
        raise DataFileError(", ".join(map(str, files)), "results", "no results to calibrate on")
    catalog = load_catalog()
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for m in measurements:
        gpus = tuple(sorted({g.id for g in parse_rig(m.rig, catalog).gpus}))
        predicted = _predict(m)
        ratio = m.tokens_per_s / predicted
        if not 1 / MAX_USER_RATIO <= ratio <= MAX_USER_RATIO:
            raise DataFileError(
                m.file,
                m.kind,
                f"{m.tokens_per_s:.4g} tok/s is {ratio:.3g}× rigplan's {predicted:.4g} for {m.model} on {m.rig}: "
                "that is not a plausible measurement of this setup (check the model, quant and GPUs)",
            )
        row = {
            **asdict(m),
            "predicted": round(predicted, 4),
            "log_ratio": round(math.log(m.tokens_per_s / predicted), 6),
        }
        groups.setdefault((engine_key(m.engine), gpus), []).append(row)
    today = today or dt.date.today()
    path = store_path()
    results = []
    with _locked(path.parent):
        doc = _read_store(path)
        entries = [e for e in doc["entries"] if isinstance(e, dict)]
        for (key, gpus), rows in groups.items():
            old = next((e for e in entries if e.get("engine") == key and tuple(e.get("gpus", ())) == gpus), None)
            merged = list(old["rows"]) if old and isinstance(old.get("rows"), list) else []
            seen = {_row_key(r) for r in merged}
            merged += [r for r in rows if _row_key(r) not in seen]
            decode = [r["log_ratio"] for r in merged if r.get("kind") == "decode"]
            prefill = [r["log_ratio"] for r in merged if r.get("kind") == "prefill"]
            d_factor, d_spread = _factor_and_spread(decode)
            p_factor, p_spread = _factor_and_spread(prefill)
            entry = {
                "engine": key,
                "gpus": list(gpus),
                "decode_factor": d_factor,
                "prefill_factor": p_factor,
                "decode_spread": d_spread,
                "prefill_spread": p_spread,
                "rows": merged,
                "fitted_on": today.isoformat(),
            }
            entries = [e for e in entries if e is not old] + [entry]
            results.append(CalibrationResult(key, gpus, d_factor, p_factor, merged, str(path)))
        _write_atomic(path, {"schema": SCHEMA, "entries": entries})
    return results


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row.get(k)
        for k in ("engine", "rig", "model", "quant", "kind", "prompt_tokens", "output_tokens", "batch", "tokens_per_s")
    )


def reset() -> bool:
    """Delete the stored calibration; True if there was one."""
    path = store_path()
    with _locked(path.parent):
        if path.exists():
            path.unlink()
            return True
    return False


def show() -> list[dict[str, Any]]:
    """The stored corrections, for ``rigplan calibrate --show``."""
    path = store_path()
    if not path.exists():
        return []
    doc = _read_store(path)
    stored_corrections(path)  # validates every entry
    return [
        {
            k: e.get(k)
            for k in (
                "engine",
                "gpus",
                "decode_factor",
                "prefill_factor",
                "decode_spread",
                "prefill_spread",
                "fitted_on",
            )
        }
        | {"rows": len(e.get("rows", []))}
        for e in doc["entries"]
    ]
