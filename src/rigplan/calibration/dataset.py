"""The published measurements as typed rows: which catalogue GPU, model, quant and workload.

The CSVs (``calibration/measurements/``, copied from the shared calibration folder with their
sources) name GPUs and models loosely ("3090 24GB", "LLaMA-7B class"); the tables here map
them to catalogue ids, or to architecture fields for models the catalogue does not carry.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalog.records import GPU, Catalog
from .stand_ins import CURRENT_MODEL_IDS, EXTRA_GPUS, EXTRA_MODELS

MEASUREMENTS = "measurements"
LLAMACPP_FILE = "llamacpp_multi_gpu.csv"
ENGINES_FILE = "engine_benchmarks.csv"
CURRENT_FILE = "llamacpp_current.csv"
#: Eras of llama.cpp data: the May-2024 campaign (builds 2795–2843) and current builds.
ERA_2024, ERA_CURRENT = "2024", "current"
#: Source of every row of the May-2024 llama.cpp file (one campaign, one leave-out fold).
XJD_SOURCE_ID = "XiongjieDai/GPU-Benchmarks-on-LLM-Inference"

#: CSV GPU names → catalogue ids.
GPU_IDS = {
    "RTX 2080 Ti": "rtx-2080-ti",
    "AMD Radeon AI PRO R9700 (32GB, gfx1201)": "radeon-ai-pro-r9700",
    "3090 24GB": "rtx-3090",
    "RTX 3090": "rtx-3090",
    "4090 24GB": "rtx-4090",
    "RTX 4090": "rtx-4090",
    "RTX 4090 24GB": "rtx-4090",
    "RTX A6000 48GB": "rtx-a6000",
    "H100 PCIe 80GB": "h100-pcie",
    "H100 SXM 80GB": "h100-sxm",
    "M2 Ultra 76-Core GPU 192GB": "m2-ultra-192gb",
    "Tesla P40": "tesla-p40",
    "RTX 3090 Ti 24GB": "rtx-3090-ti",
    "RTX 3090 Ti": "rtx-3090-ti",
}

#: (pattern, model) in order: CSV model names → catalogue id or an EXTRA_MODELS key.
MODEL_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^Llama-3-8B", "llama-3-8b"),
    (r"^Llama-3-70B", "llama-3-70b"),
    (r"^Llama-3\.1-8B", "llama-3.1-8b"),
    (r"^Llama-3\.3-70B", "llama-3.3-70b"),
    (r"^Llama-3\.1-405B", "llama-3.1-405b"),
    (r"^Llama-2-70B", "llama-2-70b"),
    (r"^Llama-2-13B|^Llama-13B", "llama-2-13b"),
    # "LLaMA-7B class" and CodeLlama-7B share Llama-2-7B's shapes (llama-bench "llama 7B").
    (r"^Llama-2-7B|^LLaMA-7B|^CodeLlama-7B|^Llama-7B", "llama-2-7b"),
    (r"^CodeLlama-34B", "codellama-34b"),
    (r"^Llama-33B", "llama-33b"),
    (r"^TinyLlama-1\.1B", "tinyllama-1.1b"),
    (r"^OpenLlama-3B", "open-llama-3b"),
)

#: ExLlamaV2's README speed test: a short prompt, then 128 generated tokens [D: test_inference.py
#: -s defaults]; the MLC comparison: a 7-word prompt (≈10 tokens) and 256 generated tokens.
EXLLAMA_PROMPT_TOKENS, EXLLAMA_OUTPUT_TOKENS = 16, 128
MLC_PROMPT_TOKENS, MLC_OUTPUT_TOKENS = 10, 256


@dataclass(frozen=True, slots=True)
class Measurement:
    """One published speed (or out-of-memory) figure, mapped to rigplan's inputs."""

    ref: str  # "file:line"
    engine: str  # rigplan engine id
    gpu: str  # catalogue id (the cross-validation fold)
    gpu_count: int
    model: str  # catalogue id or EXTRA_MODELS key
    quant: str
    kind: str  # "decode" | "prefill"
    prompt_tokens: int
    output_tokens: int
    tokens_per_s: float | None
    oom: bool
    legacy: bool
    source: str
    notes: str
    era: str = ERA_2024
    backend: str = "cuda"
    flash_attention: bool | None = None  # None: the profile's default (the 2024 rows: off)
    build: int | None = None
    source_id: str = ""
    depth: int = 0  # tokens already in the cache before the test (llama-bench -d)
    split: str | None = None
    #: llama-bench -ub / -b as run (None: the profile's defaults, 512 / 2048).
    ubatch: int | None = None
    batch: int | None = None

    @property
    def rig(self) -> str:
        return f"{self.gpu_count}x {self.gpu}" if self.gpu_count > 1 else self.gpu

    def model_input(self) -> str | dict[str, Any]:
        """What ``rigplan.estimate`` takes as the model (the catalogue's row when it has one)."""
        fields = EXTRA_MODELS.get(self.model)
        if fields is None or self.model in calibration_catalog().models:
            return self.model
        return {k: v for k, v in fields.items()}


@functools.cache
def calibration_catalog() -> Catalog:
    """The shipped catalogue plus the EXTRA_GPUS it lacks (to run every calibration row)."""
    import dataclasses

    from ..catalog import load_catalog
    from ..catalog.load import build_record

    cat = load_catalog()
    extra = {
        k: build_record(GPU, {**v, "as_of": dt.date.fromisoformat(v["as_of"])}, path="dataset.py", where=k)
        for k, v in EXTRA_GPUS.items()
        if k not in cat.gpus
    }
    return dataclasses.replace(cat, gpus={**cat.gpus, **extra}) if extra else cat


def model_key(name: str) -> str | None:
    for pattern, key in MODEL_PATTERNS:
        if re.search(pattern, name):
            return key
    return None


def _read(name: str) -> list[tuple[int, dict[str, str]]]:
    text = resources.files("rigplan.calibration").joinpath(MEASUREMENTS, name).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    return [(i + 2, row) for i, row in enumerate(reader)]


def _llamacpp_rows() -> list[Measurement]:
    out = []
    for line, r in _read(LLAMACPP_FILE):
        gpu, model = GPU_IDS.get(r["gpu"]), model_key(r["model"])
        if gpu is None or model is None:
            continue
        n = int(r["prompt_or_gen_tokens"])
        decode = r["test"] == "tg"
        value = float(r["tokens_per_s"]) if r["tokens_per_s"] else None
        out.append(
            Measurement(
                ref=f"{LLAMACPP_FILE}:{line}",
                engine="llama.cpp",
                gpu=gpu,
                gpu_count=int(r["gpu_count"]),
                model=model,
                quant=r["quant"].lower(),
                kind="decode" if decode else "prefill",
                prompt_tokens=0 if decode else n,
                output_tokens=n if decode else 0,
                tokens_per_s=value,
                oom=r["oom"].strip().lower() == "true",
                legacy="LEGACY" in r["notes"],
                source=r["source"],
                notes=r["notes"],
                backend="metal" if gpu.startswith("m2-") else "cuda",
                build=_build_number(r["notes"]),
                source_id=XJD_SOURCE_ID,
            )
        )
    return out


_BUILD_IN_NOTES = re.compile(r"\((\d{3,5})\)")
_TEST = re.compile(r"^(pp|tg)(\d+)(?:@d(\d+))?$")


def _build_number(text: str) -> int | None:
    """ "llama.cpp build 4426e298 (2824)" or "83bc2f28 (6077)" → 2824 / 6077; "b6400" → 6400."""
    m = _BUILD_IN_NOTES.search(text)
    if m:
        return int(m.group(1))
    m = re.search(r"\bb(\d{3,5})\b", text)
    return int(m.group(1)) if m else None


#: ROCm builds before this one are a kernel era the current ROCm profile does not cover: on the
#: one chip measured at both (Strix Halo, lhl/strix-halo-testing b5863–b6097 vs b7951+ rows of
#: other sources) their prompt speed is 1/3–1/5 of the later builds' [D: llamacpp_current.csv].
ROCM_FIRST_BUILD = 6100


#: A row whose printed standard deviation exceeds this share of its mean is no steady speed:
#: its repetitions disagree more than 2x (a stall or a cold first run), e.g. RTX 4090 Vulkan
#: TinyLlama pp512 10802 ± 9882 over -r 2, where pp4096 of the same run prints 18709 ± 60
#: (geerlingguy/ai-benchmarks#43) [D].  One current row is over it.
UNSTEADY_STDDEV_SHARE = 0.5


def not_modelled(r: dict[str, str], build: int | None) -> str | None:
    """Why a current-build row is not what rigplan's llama.cpp model predicts (None: it is)."""
    sd, value = r.get("stddev", "").strip(), r.get("tokens_per_s", "").strip()
    if sd and value and float(sd) > UNSTEADY_STDDEV_SHARE * float(value):
        return f"printed ± {sd} is over half the mean {value}: the repetitions disagree (no steady speed)"
    split = r["split_mode"].strip().lower()
    if split in ("tensor", "row"):
        return f"-sm {split}: rigplan models llama.cpp's layer split only"
    if r["backend"].strip().lower() == "rocm" and build is not None and build < ROCM_FIRST_BUILD:
        return f"ROCm build b{build} before b{ROCM_FIRST_BUILD} (an older kernel era)"
    return None


def excluded_rows() -> list[tuple[str, str]]:
    """(ref, reason) of the current-build rows left out of the fit and the accuracy figures."""
    out = []
    for line, r in _read(CURRENT_FILE):
        reason = not_modelled(r, _build_number(r["build"]))
        if reason:
            out.append((f"{CURRENT_FILE}:{line}", reason))
    return out


def _current_rows() -> list[Measurement]:
    """Rows of ``llamacpp_current.csv`` (2024–26 builds) that rigplan's model describes."""
    out = []
    for line, r in _read(CURRENT_FILE):
        test = _TEST.match(r["test"].strip())
        build = _build_number(r["build"])
        if not test or not r["tokens_per_s"] or not_modelled(r, build):
            continue
        out.append(_current_row(line, r, test, build))
    return out


def _current_row(line: int, r: dict[str, str], test: re.Match[str], build: int | None) -> Measurement:
    kind, n, depth = test.group(1), int(test.group(2)), int(test.group(3) or r["depth"] or 0)
    model = r["model"].strip()
    decode = kind == "tg"
    return Measurement(
        ref=f"{CURRENT_FILE}:{line}",
        engine="llama.cpp",
        gpu=GPU_IDS.get(r["gpu"].strip(), r["gpu"].strip()),
        gpu_count=int(r["n_gpus"] or 1),
        model=CURRENT_MODEL_IDS.get(model, model),
        quant=QUANT_IDS.get(r["quant"].strip().lower(), r["quant"].strip().lower()),
        kind="decode" if decode else "prefill",
        prompt_tokens=depth if decode else n,
        output_tokens=n if decode else 0,
        tokens_per_s=float(r["tokens_per_s"]),
        oom=False,
        legacy=False,
        source=r["source"],
        notes=r["notes"],
        era=ERA_CURRENT,
        backend=r["backend"].strip().lower(),
        flash_attention=r["fa"].strip() == "1",
        build=build,
        source_id=r["source_id"].strip(),
        depth=0 if decode else depth,
        split="layer" if r["split_mode"].strip().lower() == "layer" else None,
        ubatch=int(r["n_ubatch"]) if r["n_ubatch"].strip() else None,
        batch=int(r["n_batch"]) if r["n_batch"].strip() else None,
    )


_EXL2 = re.compile(r"EXL2\s+(\d+(?:\.\d+)?)\s*bpw", re.IGNORECASE)


def _engine_quant(engine: str, precision: str) -> str | None:
    if engine == "exllamav2":
        m = _EXL2.search(precision)
        if m:
            return f"exl2-{m.group(1)}"
        if precision.upper().startswith("GPTQ"):
            return "int4"
        return None
    if engine == "llama.cpp" and "Q4_K_M" in precision:
        return "q4_k_m"
    return None


def _engine_rows() -> list[Measurement]:
    out = []
    engines = {"ExLlamaV2": "exllamav2", "llama.cpp": "llama.cpp"}
    for line, r in _read(ENGINES_FILE):
        engine = engines.get(r["engine"])
        gpu, model = GPU_IDS.get(r["gpu"]), model_key(r["model"])
        if (
            engine is None
            or gpu is None
            or model is None
            or r["metric"] not in ("generation_speed", "decode_tokens_per_s")
        ):
            continue
        quant = _engine_quant(engine, r["precision"])
        if quant is None:
            continue
        prompt, output = (
            (EXLLAMA_PROMPT_TOKENS, EXLLAMA_OUTPUT_TOKENS)
            if engine == "exllamav2"
            else (MLC_PROMPT_TOKENS, MLC_OUTPUT_TOKENS)
        )
        outlier = "outlier" in r["notes"].lower() and gpu == "rtx-4090" and engine == "llama.cpp"
        out.append(
            Measurement(
                ref=f"{ENGINES_FILE}:{line}",
                engine=engine,
                gpu=gpu,
                gpu_count=int(r["gpu_count"]),
                model=model,
                quant=quant,
                kind="decode",
                prompt_tokens=prompt,
                output_tokens=output,
                tokens_per_s=float(r["value"]),
                oom=False,
                # The source flags its own 4090 llama.cpp value as a setup problem.
                legacy=outlier,
                source=r["source"],
                notes=r["notes"],
            )
        )
    return out


#: GGUF type names as printed → rigplan quant ids (gpt-oss ships MXFP4 experts, q8_0 elsewhere).
QUANT_IDS = {"mxfp4": "mxfp4_moe", "mxfp4_moe": "mxfp4_moe"}


@functools.cache
def measurements() -> tuple[Measurement, ...]:
    """Every mapped row of the llama.cpp and engine CSVs (LEGACY and OOM rows included)."""
    return tuple(_llamacpp_rows() + _engine_rows() + _current_rows())


def throughput_rows() -> list[dict[str, str]]:
    """TensorRT-LLM whole-system throughput rows (reported, not fitted)."""
    return [r for _line, r in _read(ENGINES_FILE) if r["engine"] == "TensorRT-LLM"]
