"""Architecture fields and GPU records for calibration rows whose model or GPU the catalogue
lacks.  Used only to run those rows: the catalogue's own record wins once it has one.
"""

from __future__ import annotations

from typing import Any

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

# Models of the current rows (llamacpp_current.csv) that the catalogue lacks, from each model's
# Hugging Face config.json; the values were checked against copies of those configs quoted in
# public GitHub files (find_string, 2026-12-06).  Architectures rigplan does not know by name are
# mapped onto the generic shapes they share (Gemma 3 on Gemma 2's four-norm layer).
EXTRA_MODELS.update(
    {
        # google/gemma-2b (Gemma 1, llama-bench prints "gemma 2B"): MQA, GeGLU, tied embeddings.
        "gemma-2b": {
            "id": "gemma-2b",
            "name": "Gemma 2B",
            "architecture": "GemmaForCausalLM",
            "hidden_size": 2048,
            "num_layers": 18,
            "num_heads": 8,
            "num_kv_heads": 1,
            "head_dim": 256,
            "ffn_size": 16384,
            "vocab_size": 256000,
            "max_context": 8192,
            "tie_embeddings": True,
            "source": "huggingface.co/google/gemma-2b config.json (hidden 2048, 18 layers, 8 heads, 1 KV "
            "head, intermediate 16384; the same text config is quoted in transformers' PaliGemma tests)",
        },
        "qwen2.5-1.5b": {
            "id": "qwen2.5-1.5b",
            "name": "Qwen2.5 1.5B",
            "architecture": "Qwen2ForCausalLM",
            "hidden_size": 1536,
            "num_layers": 28,
            "num_heads": 12,
            "num_kv_heads": 2,
            "ffn_size": 8960,
            "vocab_size": 151936,
            "max_context": 32768,
            "tie_embeddings": True,
            "attention_bias": True,
            "source": "huggingface.co/Qwen/Qwen2.5-1.5B-Instruct config.json",
        },
        "qwen3-1.7b": {
            "id": "qwen3-1.7b",
            "name": "Qwen3 1.7B",
            "architecture": "Qwen3ForCausalLM",
            "hidden_size": 2048,
            "num_layers": 28,
            "num_heads": 16,
            "num_kv_heads": 8,
            "head_dim": 128,
            "ffn_size": 6144,
            "vocab_size": 151936,
            "max_context": 40960,
            "tie_embeddings": True,
            "source": "huggingface.co/Qwen/Qwen3-1.7B config.json",
        },
        "gemma-3-12b": {
            "id": "gemma-3-12b",
            "name": "Gemma 3 12B",
            "architecture": "Gemma3ForCausalLM",
            "hidden_size": 3840,
            "num_layers": 48,
            "num_heads": 16,
            "num_kv_heads": 8,
            "head_dim": 256,
            "ffn_size": 15360,
            "vocab_size": 262208,
            "max_context": 131072,
            "tie_embeddings": True,
            "sliding_window": 1024,
            "sliding_window_pattern": 6,
            "source": "huggingface.co/google/gemma-3-12b-it config.json (text_config)",
        },
        "phi-4-mini": {
            "id": "phi-4-mini",
            "name": "Phi-4-mini",
            "architecture": "Phi3ForCausalLM",
            "hidden_size": 3072,
            "num_layers": 32,
            "num_heads": 24,
            "num_kv_heads": 8,
            "ffn_size": 8192,
            "vocab_size": 200064,
            "max_context": 131072,
            "tie_embeddings": True,
            "source": "huggingface.co/microsoft/Phi-4-mini-instruct config.json",
        },
    }
)

#: Model names as printed in llamacpp_current.csv → rigplan ids (catalogue or EXTRA_MODELS).
CURRENT_MODEL_IDS = {
    "gemma 2B F16": "gemma-2b",
    "gemma 2B Q4_0": "gemma-2b",
    "Qwen2.5-1.5B": "qwen2.5-1.5b",
    # PR #19378's "llama 1B F16": the only 1B llama-architecture model in llama.cpp's usual test
    # set is Llama 3.2 1B (assumption; the PR does not name the file).
    "llama 1B F16": "llama-3.2-1b",
}

#: GPUs of the current rows that the catalogue lacks (the catalogue's own row wins once it has
#: one), with their sources.  Used only to run the calibration rows.
EXTRA_GPUS: dict[str, dict[str, Any]] = {
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
        "fp16_tensor_tflops": 95.7,
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
        "on 256 bits = 644.6 GB/s, 300 W); FP16 = the vector rate 2 × 47.8 TFLOPS FP32, the same basis as the "
        "catalogue's RX 9070 XT (same gfx1201 chip), so both RDNA4 cards' rows agree",
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
}
