"""The published measurements as typed rows: which catalogue GPU, model, quant and workload.

The CSVs (``calibration/measurements/``, copied from the shared calibration folder with their
sources) name GPUs and models loosely ("3090 24GB", "LLaMA-7B class"); the tables here map
them to catalogue ids, or to architecture fields for models the catalogue does not carry.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

MEASUREMENTS = "measurements"
LLAMACPP_FILE = "llamacpp_multi_gpu.csv"
ENGINES_FILE = "engine_benchmarks.csv"

#: CSV GPU names → catalogue ids.
GPU_IDS = {
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

#: Models the catalogue lacks, as architecture fields from their Hugging Face config.json.
EXTRA_MODELS: dict[str, dict[str, Any]] = {
    # TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T config.json
    "tinyllama-1.1b": {
        "id": "tinyllama-1.1b",
        "name": "TinyLlama 1.1B",
        "hidden_size": 2048,
        "num_layers": 22,
        "num_heads": 32,
        "num_kv_heads": 4,
        "ffn_size": 5632,
        "vocab_size": 32000,
        "max_context": 2048,
        "source": "huggingface.co/TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T config.json",
    },
    # openlm-research/open_llama_3b config.json
    "open-llama-3b": {
        "id": "open-llama-3b",
        "name": "OpenLLaMA 3B",
        "hidden_size": 3200,
        "num_layers": 26,
        "num_heads": 32,
        "num_kv_heads": 32,
        "ffn_size": 8640,
        "vocab_size": 32000,
        "max_context": 2048,
        "source": "huggingface.co/openlm-research/open_llama_3b config.json",
    },
    # huggyllama/llama-30b config.json (LLaMA-1 "33B")
    "llama-33b": {
        "id": "llama-33b",
        "name": "LLaMA 33B",
        "hidden_size": 6656,
        "num_layers": 60,
        "num_heads": 52,
        "num_kv_heads": 52,
        "ffn_size": 17920,
        "vocab_size": 32000,
        "max_context": 2048,
        "source": "huggingface.co/huggyllama/llama-30b config.json",
    },
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

    @property
    def rig(self) -> str:
        return f"{self.gpu_count}x {self.gpu}" if self.gpu_count > 1 else self.gpu

    def model_input(self) -> str | dict[str, Any]:
        """What ``rigplan.estimate`` takes as the model."""
        fields = EXTRA_MODELS.get(self.model)
        if fields is None:
            return self.model
        return {k: v for k, v in fields.items()}


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
            )
        )
    return out


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


@functools.cache
def measurements() -> tuple[Measurement, ...]:
    """Every mapped row of the llama.cpp and engine CSVs (LEGACY and OOM rows included)."""
    return tuple(_llamacpp_rows() + _engine_rows())


def throughput_rows() -> list[dict[str, str]]:
    """TensorRT-LLM whole-system throughput rows (reported, not fitted)."""
    return [r for _line, r in _read(ENGINES_FILE) if r["engine"] == "TensorRT-LLM"]
