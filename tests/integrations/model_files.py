"""Real-format model files made by the tests: config.json files written from published values,
safetensors files (header and optional zero data), GGUF files written with gguf-py's
GGUFWriter.  Nothing here touches the network."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# config.json files as published on the Hugging Face Hub (the keys that matter, values verbatim)
# ---------------------------------------------------------------------------------------------

# meta-llama/Meta-Llama-3-8B config.json
LLAMA_3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0.dev0",
    "use_cache": True,
    "vocab_size": 128256,
}

# Published config.json values of other catalogue models, keyed by catalogue id.
PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "llama-3-8b": LLAMA_3_8B,
    # mistralai/Mistral-7B-v0.1
    "mistral-7b": {
        "architectures": ["MistralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 32000,
    },
    # mistralai/Mixtral-8x7B-v0.1
    "mixtral-8x7b": {
        "architectures": ["MixtralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mixtral",
        "num_attention_heads": 32,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 32000,
    },
    # Qwen/Qwen2.5-7B
    "qwen2.5-7b": {
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "max_position_embeddings": 131072,
        "max_window_layers": 28,
        "model_type": "qwen2",
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
        "num_key_value_heads": 4,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 152064,
    },
    # Qwen/Qwen3-8B
    "qwen3-8b": {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "head_dim": 128,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "max_position_embeddings": 40960,
        "model_type": "qwen3",
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    # Qwen/Qwen3-30B-A3B
    "qwen3-30b-a3b": {
        "architectures": ["Qwen3MoeForCausalLM"],
        "attention_bias": False,
        "decoder_sparse_step": 1,
        "head_dim": 128,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "max_position_embeddings": 40960,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": 768,
        "num_attention_heads": 32,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 48,
        "num_key_value_heads": 4,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    # google/gemma-2-9b
    "gemma-2-9b": {
        "architectures": ["Gemma2ForCausalLM"],
        "attn_logit_softcapping": 50.0,
        "final_logit_softcapping": 30.0,
        "head_dim": 256,
        "hidden_size": 3584,
        "intermediate_size": 14336,
        "max_position_embeddings": 8192,
        "model_type": "gemma2",
        "num_attention_heads": 16,
        "num_hidden_layers": 42,
        "num_key_value_heads": 8,
        "query_pre_attn_scalar": 256,
        "sliding_window": 4096,
        "torch_dtype": "float32",
        "vocab_size": 256000,
    },
    # tiiuae/falcon-40b (after its move into transformers)
    "falcon-40b": {
        "architectures": ["FalconForCausalLM"],
        "bias": False,
        "hidden_size": 8192,
        "model_type": "falcon",
        "multi_query": True,
        "new_decoder_architecture": True,
        "num_attention_heads": 128,
        "num_hidden_layers": 60,
        "num_kv_heads": 8,
        "parallel_attn": True,
        "torch_dtype": "bfloat16",
        "vocab_size": 65024,
    },
    # microsoft/Phi-3-mini-4k-instruct
    "phi-3-mini-4k": {
        "architectures": ["Phi3ForCausalLM"],
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "max_position_embeddings": 4096,
        "model_type": "phi3",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "sliding_window": 2047,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 32064,
    },
    # deepseek-ai/DeepSeek-V3
    "deepseek-v3": {
        "architectures": ["DeepseekV3ForCausalLM"],
        "first_k_dense_replace": 3,
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "kv_lora_rank": 512,
        "max_position_embeddings": 163840,
        "model_type": "deepseek_v3",
        "moe_intermediate_size": 2048,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_attention_heads": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 61,
        "num_key_value_heads": 128,
        "num_nextn_predict_layers": 1,
        "q_lora_rank": 1536,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "v_head_dim": 128,
        "vocab_size": 129280,
        "quantization_config": {
            "activation_scheme": "dynamic",
            "fmt": "e4m3",
            "quant_method": "fp8",
            "weight_block_size": [128, 128],
        },
    },
}


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, then the data
# ---------------------------------------------------------------------------------------------

SAFETENSORS_DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "U8": 1, "I8": 1, "F8_E4M3": 1}


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]], *, with_data: bool) -> None:
    """A safetensors file: the real header; the data zero-filled, or left out (header only)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = SAFETENSORS_DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        if with_data:
            f.write(b"\0" * offset)


def llama_hf_tensors(config: dict[str, Any], dtype: str = "BF16") -> dict[str, tuple[str, list[int]]]:
    """The tensor names and shapes transformers' LlamaForCausalLM saves for ``config``."""
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = d // heads
    out: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": (dtype, [v, d])}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out |= {
            p + "self_attn.q_proj.weight": (dtype, [heads * hd, d]),
            p + "self_attn.k_proj.weight": (dtype, [kv * hd, d]),
            p + "self_attn.v_proj.weight": (dtype, [kv * hd, d]),
            p + "self_attn.o_proj.weight": (dtype, [d, heads * hd]),
            p + "mlp.gate_proj.weight": (dtype, [f, d]),
            p + "mlp.up_proj.weight": (dtype, [f, d]),
            p + "mlp.down_proj.weight": (dtype, [d, f]),
            p + "input_layernorm.weight": (dtype, [d]),
            p + "post_attention_layernorm.weight": (dtype, [d]),
        }
    out["model.norm.weight"] = (dtype, [d])
    if not config.get("tie_word_embeddings", False):
        out["lm_head.weight"] = (dtype, [v, d])
    return out


def gptq_tensors(config: dict[str, Any], bits: int = 4, group: int = 128) -> dict[str, tuple[str, list[int]]]:
    """AutoGPTQ's layout: qweight int32 [in/(32/bits), out], qzeros, scales fp16, g_idx."""
    out: dict[str, tuple[str, list[int]]] = {}
    pack = 32 // bits
    for name, (_dtype, shape) in llama_hf_tensors(config).items():
        if "layers." in name and name.endswith("proj.weight"):
            rows, cols = shape  # [out, in]
            stem = name.removesuffix(".weight")
            out[stem + ".qweight"] = ("I32", [cols // pack, rows])
            out[stem + ".qzeros"] = ("I32", [cols // group, rows // pack])
            out[stem + ".scales"] = ("F16", [cols // group, rows])
            out[stem + ".g_idx"] = ("I32", [cols])
        else:
            out[name] = ("F16", shape)
    return out


def write_model_folder(
    folder: Path,
    config: dict[str, Any],
    tensors: dict[str, tuple[str, list[int]]],
    *,
    shards: int = 2,
    with_data: bool = False,
) -> Path:
    """config.json + model-0000N-of-0000M.safetensors + model.safetensors.index.json."""
    write_config(folder, config)
    names = list(tensors)
    per = -(-len(names) // shards)
    weight_map = {}
    for s in range(shards):
        part = names[s * per : (s + 1) * per]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / fname, {n: tensors[n] for n in part}, with_data=with_data)
        weight_map |= {n: fname for n in part}
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}), encoding="utf-8"
    )
    return folder


# ---------------------------------------------------------------------------------------------
# GGUF files written with gguf-py's GGUFWriter
# ---------------------------------------------------------------------------------------------


def gguf_tensor_bytes(ggml_type: Any, rows: int, cols: int) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[ggml_type]
    return rows * cols // block * size


def write_gguf(
    path: Path,
    arch: str,
    metadata: dict[str, Any],
    tensors: list[tuple[str, tuple[int, ...], Any]],
    *,
    file_type: int | None,
    sparse: bool = False,
) -> int:
    """A GGUF file; tensors as (name, numpy-order shape, GGMLQuantizationType).

    With ``sparse`` the tensor data is a hole in the file (all zeros, no disk blocks), so a
    full-size model's header can be real without writing gigabytes.  Returns the tensor bytes.
    """
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch)
    for key, value in metadata.items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_string(key, value)
    if file_type is not None:
        w.add_file_type(file_type)
    total = 0
    padded = 0
    for name, shape, t in tensors:
        rows = 1
        for d in shape[:-1]:
            rows *= d
        nbytes = gguf_tensor_bytes(t, rows, shape[-1])
        total += nbytes
        padded += gguf.GGUFWriter.ggml_pad(nbytes, w.data_alignment)
        if sparse:
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=t)
        elif t == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, np.zeros(shape, dtype=np.float32))
        else:
            block, size = gguf.GGML_QUANT_SIZES[t]
            data = np.zeros((*shape[:-1], shape[-1] // block * size), dtype=np.uint8)
            w.add_tensor(name, data, raw_dtype=t)
    if sparse:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        f = w.fout[0]
        f.write(b"\0" * (gguf.GGUFWriter.ggml_pad(f.tell(), w.data_alignment) - f.tell()))
        f.truncate(f.tell() + padded)
        f.close()
    else:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return total
