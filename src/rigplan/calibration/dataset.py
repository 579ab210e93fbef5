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

_GPT_OSS = {
    "architecture": "Qwen3MoeForCausalLM",  # same tensor layout: attention, router, gated experts
    "hidden_size": 2880,
    "num_heads": 64,
    "num_kv_heads": 8,
    "head_dim": 64,
    "ffn_size": 2880,
    "moe_ffn_size": 2880,
    "moe_active_experts": 4,
    "vocab_size": 201088,
    "max_context": 131072,
    "attention_bias": True,
    "sliding_window": 128,
    "sliding_window_pattern": 2,
    "notes": "gpt-oss: alternating 128-token sliding-window and full attention, attention sinks and "
    "biases (tiny); modelled on the Qwen3-MoE tensor layout for calibration",
}
_GEMMA_3 = {
    "architecture": "Gemma2ForCausalLM",  # Gemma 3's text stack has Gemma 2's tensors (+ q/k norms)
    "vocab_size": 262208,
    "max_context": 131072,
    "tie_embeddings": True,
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
}
_QWEN3_MOE = {
    "architecture": "Qwen3MoeForCausalLM",
    "num_heads": 32,
    "num_kv_heads": 4,
    "head_dim": 128,
    "vocab_size": 151936,
    "moe_num_experts": 128,
    "moe_active_experts": 8,
}
# Architecture fields of the current models in llamacpp_current.csv that the catalogue lacks,
# from each model's Hugging Face config.json (huggingface.co/<repo>/blob/main/config.json).
EXTRA_MODELS.update(
    {
        "gpt-oss-20b": {
            **_GPT_OSS,
            "id": "gpt-oss-20b",
            "name": "gpt-oss 20B",
            "num_layers": 24,
            "moe_num_experts": 32,
            "source": "huggingface.co/openai/gpt-oss-20b config.json",
        },
        "gpt-oss-120b": {
            **_GPT_OSS,
            "id": "gpt-oss-120b",
            "name": "gpt-oss 120B",
            "num_layers": 36,
            "moe_num_experts": 128,
            "source": "huggingface.co/openai/gpt-oss-120b config.json",
        },
        "gemma-3-4b": {
            **_GEMMA_3,
            "id": "gemma-3-4b",
            "name": "Gemma 3 4B",
            "hidden_size": 2560,
            "num_layers": 34,
            "num_heads": 8,
            "num_kv_heads": 4,
            "head_dim": 256,
            "ffn_size": 10240,
            "source": "huggingface.co/google/gemma-3-4b-it config.json (text_config)",
        },
        "gemma-3-27b": {
            **_GEMMA_3,
            "id": "gemma-3-27b",
            "name": "Gemma 3 27B",
            "hidden_size": 5376,
            "num_layers": 62,
            "num_heads": 32,
            "num_kv_heads": 16,
            "head_dim": 128,
            "ffn_size": 21504,
            "source": "huggingface.co/google/gemma-3-27b-it config.json (text_config)",
        },
        "mistral-small-24b": {
            "id": "mistral-small-24b",
            "name": "Mistral Small 24B",
            "architecture": "MistralForCausalLM",
            "hidden_size": 5120,
            "num_layers": 40,
            "num_heads": 32,
            "num_kv_heads": 8,
            "head_dim": 128,
            "ffn_size": 32768,
            "vocab_size": 131072,
            "max_context": 32768,
            "source": "huggingface.co/mistralai/Mistral-Small-24B-Instruct-2501 config.json",
        },
        "qwen3-coder-30b-a3b": {
            **_QWEN3_MOE,
            "id": "qwen3-coder-30b-a3b",
            "name": "Qwen3 Coder 30B-A3B",
            "hidden_size": 2048,
            "num_layers": 48,
            "ffn_size": 6144,
            "moe_ffn_size": 768,
            "max_context": 262144,
            "source": "huggingface.co/Qwen/Qwen3-Coder-30B-A3B-Instruct config.json",
        },
        "qwen3-235b-a22b": {
            **_QWEN3_MOE,
            "id": "qwen3-235b-a22b",
            "name": "Qwen3 235B-A22B",
            "hidden_size": 4096,
            "num_layers": 94,
            "num_heads": 64,
            "ffn_size": 12288,
            "moe_ffn_size": 1536,
            "max_context": 40960,
            "source": "huggingface.co/Qwen/Qwen3-235B-A22B config.json",
        },
    }
)

#: GPUs of the current rows that the catalogue may lack (the catalogue's own row wins when it
#: has one), with their sources.  Used only to run the calibration rows.
EXTRA_GPUS: dict[str, dict[str, Any]] = {
    "dgx-spark": {
        "id": "dgx-spark",
        "name": "NVIDIA DGX Spark (GB10)",
        "vendor": "nvidia",
        "gpu_class": "workstation",
        "architecture": "blackwell",
        "launch_year": 2025,
        "memory_gb": 128,
        "memory_mib": 122570,
        "memory_type": "LPDDR5x",
        "bandwidth_gb_per_s": 273.0,
        "sm_count": 48,
        "boost_clock_mhz": 2418,
        "fp16_tensor_tflops": 62.0,
        "fp16_acc16_tensor_tflops": 124.0,
        "int8_tensor_tops": 248.0,
        "fp8_tensor_tflops": 248.0,
        "fp32_tflops": 31.0,
        "board_power_w": 140,
        "power_connector": "integrated",
        "power_connector_count": 0,
        "slot_width": 0.0,
        "cooling": "integrated",
        "ecc": False,
        "form_factor": "system",
        "nvlink": "none",
        "source": "nvidia.com/en-us/products/workstations/dgx-spark (128 GB LPDDR5x, 273 GB/s, GB10 "
        "Blackwell, 1 PFLOP FP4 sparse); 6144 CUDA cores = 48 SMs; tensor rates scaled from 1 PFLOP "
        "FP4 sparse (FP16 acc16 = 1/8, FP32 acc = 1/16, as on GeForce Blackwell)",
        "as_of": "2026-12-06",
    },
    "rx-9070-xt": {
        "id": "rx-9070-xt",
        "name": "Radeon RX 9070 XT",
        "vendor": "amd",
        "gpu_class": "consumer",
        "architecture": "rdna4",
        "launch_year": 2025,
        "memory_gb": 16,
        "memory_mib": 16304,
        "memory_type": "GDDR6",
        "bandwidth_gb_per_s": 644.6,
        "sm_count": 64,
        "boost_clock_mhz": 2970,
        "fp16_tensor_tflops": 194.7,
        "int8_tensor_tops": 389.3,
        "fp32_tflops": 48.7,
        "board_power_w": 304,
        "power_connector": "8-pin-pcie",
        "power_connector_count": 2,
        "slot_width": 2.5,
        "cooling": "open-air",
        "ecc": False,
        "form_factor": "pcie",
        "nvlink": "none",
        "pcie_generation": 5,
        "pcie_lanes": 16,
        "source": "amd.com Radeon RX 9070 XT specifications (64 CUs, 2970 MHz boost, 16 GB GDDR6 at 20 Gbps on "
        "256 bits = 644.6 GB/s, 304 W); FP16 matrix 1024 FLOP/CU/clock dense (RDNA4 WMMA, AMD "
        "lists 389 TFLOPS FP16 with sparsity)",
        "as_of": "2026-12-06",
    },
    "radeon-ai-pro-r9700": {
        "id": "radeon-ai-pro-r9700",
        "name": "Radeon AI PRO R9700",
        "vendor": "amd",
        "gpu_class": "workstation",
        "architecture": "rdna4",
        "launch_year": 2025,
        "memory_gb": 32,
        "memory_mib": 32624,
        "memory_type": "GDDR6",
        "bandwidth_gb_per_s": 644.6,
        "sm_count": 64,
        "boost_clock_mhz": 2920,
        "fp16_tensor_tflops": 191.4,
        "int8_tensor_tops": 382.7,
        "fp32_tflops": 47.8,
        "board_power_w": 300,
        "power_connector": "12v-2x6",
        "power_connector_count": 1,
        "slot_width": 2.0,
        "cooling": "blower",
        "ecc": False,
        "form_factor": "pcie",
        "nvlink": "none",
        "pcie_generation": 5,
        "pcie_lanes": 16,
        "source": "amd.com Radeon AI PRO R9700 specifications (64 CUs, 2920 MHz boost, 32 GB GDDR6 at 20 Gbps "
        "on 256 bits = 644.6 GB/s, 300 W; 383 TFLOPS FP16 matrix with sparsity → 191 dense)",
        "as_of": "2026-12-06",
    },
    "rtx-2080-ti": {
        "id": "rtx-2080-ti",
        "name": "GeForce RTX 2080 Ti",
        "vendor": "nvidia",
        "gpu_class": "consumer",
        "architecture": "turing",
        "launch_year": 2018,
        "memory_gb": 11,
        "memory_mib": 11264,
        "memory_type": "GDDR6",
        "bandwidth_gb_per_s": 616.0,
        "sm_count": 68,
        "boost_clock_mhz": 1545,
        "fp16_tensor_tflops": 53.8,
        "fp16_acc16_tensor_tflops": 107.6,
        "int8_tensor_tops": 215.2,
        "fp32_tflops": 13.4,
        "board_power_w": 250,
        "power_connector": "8-pin-pcie",
        "power_connector_count": 2,
        "slot_width": 2.0,
        "cooling": "open-air",
        "ecc": False,
        "form_factor": "pcie",
        "nvlink": "bridge",
        "pcie_generation": 3,
        "pcie_lanes": 16,
        "source": "NVIDIA Turing architecture whitepaper appendix (RTX 2080 Ti: 68 SMs, 1545 MHz boost, 616 "
        "GB/s, FP16 tensor 107.6 TFLOPS with FP16 accumulate, 53.8 with FP32 accumulate, INT8 215.2 TOPS)",
        "as_of": "2026-12-06",
    },
    "ryzen-ai-max-395-128gb": {
        "id": "ryzen-ai-max-395-128gb",
        "name": "AMD Ryzen AI Max+ 395 (Radeon 8060S, 128 GB)",
        "vendor": "amd",
        "gpu_class": "workstation",
        "architecture": "rdna3.5",
        "launch_year": 2025,
        "memory_gb": 128,
        "memory_mib": 131072,
        "memory_type": "LPDDR5x",
        "bandwidth_gb_per_s": 256.0,
        "sm_count": 40,
        "boost_clock_mhz": 2900,
        "fp16_tensor_tflops": 59.4,
        "fp32_tflops": 29.7,
        "board_power_w": 120,
        "power_connector": "integrated",
        "power_connector_count": 0,
        "slot_width": 0.0,
        "cooling": "integrated",
        "ecc": False,
        "form_factor": "system",
        "nvlink": "none",
        "source": "amd.com Ryzen AI Max+ 395 (40 RDNA 3.5 CUs at 2.9 GHz, 256-bit LPDDR5X-8000 = 256 "
        "GB/s); FP16 WMMA 512 FLOP/CU/clock (RDNA3 ISA guide), FP32 256 with dual issue",
        "as_of": "2026-12-06",
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
    era: str = ERA_2024
    backend: str = "cuda"
    flash_attention: bool | None = None  # None: the profile's default (the 2024 rows: off)
    build: int | None = None
    source_id: str = ""
    depth: int = 0  # tokens already in the cache before the test (llama-bench -d)
    split: str | None = None

    @property
    def rig(self) -> str:
        return f"{self.gpu_count}x {self.gpu}" if self.gpu_count > 1 else self.gpu

    def model_input(self) -> str | dict[str, Any]:
        """What ``rigplan.estimate`` takes as the model."""
        fields = EXTRA_MODELS.get(self.model)
        if fields is None:
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


def _current_rows() -> list[Measurement]:
    """Rows of ``llamacpp_current.csv`` (2024–26 builds) that map to rigplan's catalogue."""
    out = []
    for line, r in _read(CURRENT_FILE):
        gpu = GPU_IDS.get(r["gpu"].strip(), r["gpu"].strip())
        model = r["model"].strip()
        test = _TEST.match(r["test"].strip())
        if not test or not r["tokens_per_s"]:
            continue
        kind, n, depth = test.group(1), int(test.group(2)), int(test.group(3) or r["depth"] or 0)
        quant = QUANT_IDS.get(r["quant"].strip().lower(), r["quant"].strip().lower())
        decode = kind == "tg"
        split = r["split_mode"].strip().lower()
        out.append(
            Measurement(
                ref=f"{CURRENT_FILE}:{line}",
                engine="llama.cpp",
                gpu=gpu,
                gpu_count=int(r["n_gpus"] or 1),
                model=model,
                quant=quant,
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
                build=_build_number(r["build"]),
                source_id=r["source_id"].strip(),
                depth=0 if decode else depth,
                split=split if split in ("layer", "row") else None,
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


#: GGUF type names as printed → rigplan quant ids (gpt-oss ships MXFP4 experts, q8_0 elsewhere).
QUANT_IDS = {"mxfp4": "mxfp4_moe", "mxfp4_moe": "mxfp4_moe"}


@functools.cache
def measurements() -> tuple[Measurement, ...]:
    """Every mapped row of the llama.cpp and engine CSVs (LEGACY and OOM rows included)."""
    return tuple(_llamacpp_rows() + _engine_rows() + _current_rows())


def throughput_rows() -> list[dict[str, str]]:
    """TensorRT-LLM whole-system throughput rows (reported, not fitted)."""
    return [r for _line, r in _read(ENGINES_FILE) if r["engine"] == "TensorRT-LLM"]
