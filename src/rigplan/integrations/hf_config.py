"""A Hugging Face ``config.json`` as a model: its fields mapped to rigplan's architecture record
(dense, MoE, MLA, sliding windows, tied embeddings), its quantization config to a quant id, and
the parameter count checked against the safetensors headers when they are at hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import arch
from ..catalog.load import build_record
from ..catalog.records import Model
from ..errors import CatalogError, DataFileError, InvalidValueError, UnsupportedError
from .model_source import ModelSource, TensorHeader, count_stored_parameters

# ---------------------------------------------------------------------------------------------
# config.json -> Model
# ---------------------------------------------------------------------------------------------

_DTYPES = {"bfloat16": "bf16", "float16": "f16", "half": "f16", "float32": "f32", "float": "f32"}

# Model types whose checkpoints tie the output head to the embedding unless the config says
# otherwise: the HF config class default (PretrainedConfig: True) is kept by Gemma/Gemma 2
# and MPT; Llama, Mistral, Mixtral, Qwen2/3, Phi-3 and DeepSeek set it False.  Falcon's config
# inherits True too, but its checkpoints store lm_head.weight as its own tensor, and llama.cpp
# converts it as one: counted separately, as the catalogue's falcon-40b row explains.  With
# safetensors headers the presence of an lm_head tensor decides.
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "mpt"})
# Falcon's config before it joined transformers (model_type "RefinedWeb"): same shapes.
_FALCON_TYPES = frozenset({"falcon", "RefinedWeb", "RefinedWebModel"})
# Falcon-RW/7B/40B default context when the config has no max_position_embeddings
# (FalconConfig has none; the models were trained at 2,048 tokens).
FALCON_DEFAULT_CONTEXT = 2048
# MPT's FFN width is expansion_ratio x d_model (MPTConfig default 4).
MPT_DEFAULT_EXPANSION = 4
# Gemma 2 alternates local (sliding) and global layers: one global every 2 layers.
GEMMA2_LAYER_PATTERN = 2
# A config that gives no context length: transformers' PretrainedConfig has no default for
# max_position_embeddings; 2,048 is the GPT-3-era default most such configs were trained at.
UNKNOWN_DEFAULT_CONTEXT = 2048
# Header parameter counts this far from the config arithmetic mean the config was misread
# (or the checkpoint holds more than the language model, e.g. a vision tower): say so.
PARAM_MISMATCH_NOTE = 0.02


def _config_error(where: str, key: str, message: str) -> DataFileError:
    return DataFileError(where, key, message)


def _int(cfg: Mapping[str, Any], where: str, *keys: str, default: int | None = None) -> int:
    for key in keys:
        if key in cfg and cfg[key] is not None:
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _config_error(where, key, f"expected a whole number ≥ 0, got {value!r}")
            return value
    if default is None:
        raise _config_error(where, keys[0], "missing")
    return default


def _flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Multimodal configs keep the language model in ``text_config``: read that part."""
    text = config.get("text_config")
    if isinstance(text, Mapping):
        merged = {**config, **text}
        merged["architectures"] = config.get("architectures") or text.get("architectures")
        return merged
    return dict(config)


def quant_from_config(quantization: Mapping[str, Any]) -> str | None:
    """rigplan's quant id for a ``quantization_config``: GPTQ/AWQ -> int4 (or int8 at 8 bits),
    bitsandbytes -> nf4 / int8, fp8 -> fp8, compressed-tensors by its weight format, EXL2 ->
    exl2-<bpw>; None when there is none."""
    if not quantization:
        return None
    method = str(quantization.get("quant_method", "")).lower()
    bits = quantization.get("bits", quantization.get("w_bit"))
    if method in ("gptq", "awq", "awq_marlin", "gptq_marlin", "marlin"):
        return "int8" if bits == 8 else "int4"
    if method == "bitsandbytes":
        if quantization.get("load_in_8bit"):
            return "int8"
        return "nf4"
    if method in ("fp8", "fbgemm_fp8", "modelopt"):
        return "fp8"
    if method == "exl2" and isinstance(bits, int | float):
        return f"exl2-{bits}"
    if method == "compressed-tensors":
        fmt = str(quantization.get("format", ""))
        groups = quantization.get("config_groups") or {}
        weights: Mapping[str, Any] = {}
        for group in groups.values() if isinstance(groups, Mapping) else ():
            if isinstance(group, Mapping) and isinstance(group.get("weights"), Mapping):
                weights = group["weights"]
                break
        num_bits, kind = weights.get("num_bits"), weights.get("type")
        if fmt == "float-quantized" or (num_bits == 8 and kind == "float"):
            return "fp8"
        if fmt == "int-quantized" or (num_bits == 8 and kind == "int"):
            return "int8"
        if fmt in ("pack-quantized", "naive-quantized") or num_bits == 4:
            return "int4"
    return None


def _architecture(cfg: Mapping[str, Any], where: str) -> tuple[str, str | None]:
    """(architecture rigplan models, warning or None)."""
    archs = cfg.get("architectures")
    name = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    model_type = str(cfg.get("model_type", ""))
    if name in arch.SUPPORTED_ARCHITECTURES:
        return name, None
    if model_type in _FALCON_TYPES:
        return "FalconForCausalLM", None
    if model_type == "mpt":
        return "MPTForCausalLM", None
    shown = name or (f"model_type {model_type!r}" if model_type else "an unnamed architecture")
    needed = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    missing = [k for k in needed if k not in cfg]
    if missing:
        raise UnsupportedError(
            f"{where}: {shown} is not an architecture rigplan knows, and the config lacks "
            f"{', '.join(missing)} to read its shapes from (supported: "
            f"{', '.join(sorted(arch.SUPPORTED_ARCHITECTURES))})"
        )
    warning = (
        f"{where}: {shown} is not an architecture rigplan knows; estimating it as a "
        "Llama-shaped decoder (gated FFN, GQA) from its config fields — check the parameter count"
    )
    return "LlamaForCausalLM", warning


def _mpt_fields(cfg: Mapping[str, Any], where: str) -> dict[str, Any]:
    """MPT names every shape differently (d_model, n_heads, expansion_ratio) and ties embeddings."""
    d = _int(cfg, where, "d_model")
    heads = _int(cfg, where, "n_heads")
    return {
        "hidden_size": d,
        "num_layers": _int(cfg, where, "n_layers"),
        "num_heads": heads,
        "num_kv_heads": heads,
        "vocab_size": _int(cfg, where, "vocab_size"),
        "ffn_size": d * _int(cfg, where, "expansion_ratio", default=MPT_DEFAULT_EXPANSION),
        "ffn_kind": "plain",
        "tie_embeddings": True,
        "max_context": _int(cfg, where, "max_seq_len", default=UNKNOWN_DEFAULT_CONTEXT),
    }


def _falcon_fields(cfg: Mapping[str, Any], where: str, hidden: int, heads: int) -> dict[str, Any]:
    """Falcon: multi-query (one KV head) unless the new decoder architecture names its KV heads."""
    if cfg.get("new_decoder_architecture"):
        kv = _int(cfg, where, "num_kv_heads", "n_head_kv", default=heads)
    elif cfg.get("multi_query", True):
        kv = 1
    else:
        kv = heads
    return {
        "num_kv_heads": kv,
        "ffn_kind": "plain",
        "ffn_size": _int(cfg, where, "ffn_hidden_size", default=4 * hidden),
        "attention_bias": bool(cfg.get("bias", False)),
        "max_context": _int(cfg, where, "max_position_embeddings", default=FALCON_DEFAULT_CONTEXT),
    }


def _llama_like_fields(cfg: Mapping[str, Any], where: str, model_type: str, hidden: int, heads: int) -> dict[str, Any]:
    """Llama-style configs (and their MoE forms): KV heads, FFN size, context, head_dim, biases."""
    fields: dict[str, Any] = {
        "num_kv_heads": _int(cfg, where, "num_key_value_heads", default=heads),
        "ffn_size": _int(cfg, where, "intermediate_size"),
        "max_context": _int(
            cfg, where, "max_position_embeddings", "max_sequence_length", "seq_length", default=UNKNOWN_DEFAULT_CONTEXT
        ),
    }
    if cfg.get("head_dim") is not None:
        head_dim = _int(cfg, where, "head_dim")
        if head_dim != hidden // heads:
            fields["head_dim"] = head_dim
    # Qwen2 (and Qwen2-MoE) always carry q/k/v biases and their config has no key for it.
    bias_default = model_type in ("qwen2", "qwen2_moe")
    fields["attention_bias"] = bool(cfg.get("attention_bias", cfg.get("qkv_bias", bias_default)))
    return fields


def model_fields_from_config(config: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Model fields from a Hugging Face ``config.json`` (Llama, Mistral, Mixtral, Qwen2/3 and
    their MoE forms, Gemma/Gemma 2, Falcon, MPT, Phi-3, DeepSeek-V2/V3), and warnings.

    Raises:
        DataFileError: a required key is missing or has the wrong type, naming it.
        UnsupportedError: an unknown architecture without the fields to read shapes from.
    """
    cfg = _flatten_config(config)
    architecture, warning = _architecture(cfg, where)
    warnings_ = [warning] if warning else []
    model_type = str(cfg.get("model_type", ""))
    fields: dict[str, Any] = {"architecture": architecture}
    if architecture == "MPTForCausalLM":
        return _with_dtype(fields | _mpt_fields(cfg, where), cfg), warnings_
    hidden = _int(cfg, where, "hidden_size", "n_embed", "d_model")
    heads = _int(cfg, where, "num_attention_heads", "n_head")
    if heads == 0:
        raise _config_error(where, "num_attention_heads", "must be at least 1")
    fields |= {
        "hidden_size": hidden,
        "num_layers": _int(cfg, where, "num_hidden_layers", "n_layer"),
        "num_heads": heads,
        "vocab_size": _int(cfg, where, "vocab_size"),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", model_type in _TIED_BY_DEFAULT)),
    }
    if architecture in ("FalconForCausalLM", "RWForCausalLM"):
        return _with_dtype(fields | _falcon_fields(cfg, where, hidden, heads), cfg), warnings_
    fields |= _llama_like_fields(cfg, where, model_type, hidden, heads)
    _moe_fields(cfg, where, architecture, fields)
    _window_fields(cfg, where, model_type, fields)
    return _with_dtype(fields, cfg), warnings_


def _moe_fields(cfg: Mapping[str, Any], where: str, architecture: str, fields: dict[str, Any]) -> None:
    if architecture in ("DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM"):
        fields |= {
            "moe_num_experts": _int(cfg, where, "n_routed_experts", default=0),
            "moe_active_experts": _int(cfg, where, "num_experts_per_tok", default=0),
            "moe_shared_experts": _int(cfg, where, "n_shared_experts", default=0),
            "moe_ffn_size": _int(cfg, where, "moe_intermediate_size", default=0),
            "moe_first_dense_layers": _int(cfg, where, "first_k_dense_replace", default=0),
            "q_lora_rank": _int(cfg, where, "q_lora_rank", default=0),
            "kv_lora_rank": _int(cfg, where, "kv_lora_rank"),
            "qk_rope_head_dim": _int(cfg, where, "qk_rope_head_dim"),
            "qk_nope_head_dim": _int(cfg, where, "qk_nope_head_dim"),
            "v_head_dim": _int(cfg, where, "v_head_dim"),
        }
        return
    experts = _int(cfg, where, "num_local_experts", "num_experts", "n_routed_experts", default=0)
    if not experts:
        return
    fields["moe_num_experts"] = experts
    fields["moe_active_experts"] = _int(cfg, where, "num_experts_per_tok", "num_experts_per_token")
    if architecture == "MixtralForCausalLM" or "moe_intermediate_size" not in cfg:
        fields["moe_ffn_size"] = fields["ffn_size"]
    else:
        fields["moe_ffn_size"] = _int(cfg, where, "moe_intermediate_size")
    shared = _int(cfg, where, "shared_expert_intermediate_size", default=0)
    if shared and fields["moe_ffn_size"]:
        # Qwen2-MoE: one shared expert as wide as `shared` (a whole number of expert widths).
        fields["moe_shared_experts"] = max(1, shared // fields["moe_ffn_size"])
    sparse_step = _int(cfg, where, "decoder_sparse_step", default=1)
    dense_only = cfg.get("mlp_only_layers") or []
    if sparse_step != 1 or dense_only:
        raise UnsupportedError(
            f"{where}: MoE layers every {sparse_step} layers or dense mlp_only_layers "
            f"{dense_only} are not modelled (rigplan assumes every layer is MoE after the first dense ones)"
        )


def _window_fields(cfg: Mapping[str, Any], where: str, model_type: str, fields: dict[str, Any]) -> None:
    window = cfg.get("sliding_window")
    if window in (None, 0, False):
        return
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and not cfg.get("use_sliding_window"):
        return  # present in every Qwen config but off unless use_sliding_window is true
    fields["sliding_window"] = _int(cfg, where, "sliding_window")
    if model_type == "gemma2":
        fields["sliding_window_pattern"] = GEMMA2_LAYER_PATTERN
    else:
        fields["sliding_window_pattern"] = _int(cfg, where, "sliding_window_pattern", default=1)


def _with_dtype(fields: dict[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    dtype = cfg.get("torch_dtype", cfg.get("dtype"))
    if isinstance(dtype, str) and dtype in _DTYPES:
        fields["release_dtype"] = _DTYPES[dtype]
    return fields


def build_model(fields: Mapping[str, Any], *, where: str) -> Model:
    """A validated :class:`Model` from fields; a bad value names the file and the field."""
    row = {
        "id": "custom",
        "name": "custom model",
        "family": "custom",
        "hf_repo": "",
        "tie_embeddings": False,
        "max_context": UNKNOWN_DEFAULT_CONTEXT,
        "published_param_count": 0,
        "source": where,
        "as_of": dt.date.today(),
        **fields,
    }
    try:
        model = build_record(Model, row, path=where, where="model")
    except CatalogError as exc:
        message = str(exc)[len(f"{exc.path}: {exc.field}: ") :]
        raise DataFileError(where, exc.field.removeprefix("model."), message) from None
    if model.num_kv_heads == 0 or model.num_heads % max(model.num_kv_heads, 1):
        raise DataFileError(
            where,
            "num_key_value_heads",
            f"{model.num_kv_heads} does not divide {model.num_heads} attention heads",
        )
    try:
        arch.check_shapes(model)  # before counting: a corrupt layer count must not enumerate tensors
    except InvalidValueError as exc:
        raise DataFileError(where, exc.field.split(".")[-1], str(exc).split(": ", 1)[-1]) from None
    if model.published_param_count == 0:
        model = dataclasses.replace(model, published_param_count=arch.count_parameters(model))
    return model


def _model_id(text: str) -> str:
    return text.strip()


def _family(architecture: str) -> str:
    base = architecture.removesuffix("ForCausalLM").lower()
    return re.sub(r"(v\d+|\d+|moe)+$", "", base) or base


def source_from_config(
    config: Mapping[str, Any],
    *,
    where: str,
    model_id: str,
    kind: str,
    launch_path: str,
    tensors: Mapping[str, TensorHeader] | None = None,
    extra_notes: tuple[str, ...] = (),
    hf_repo: str = "",
) -> ModelSource:
    """A :class:`ModelSource` from a parsed ``config.json`` and optional tensor headers."""
    fields, warns = model_fields_from_config(config, where)
    quantization = config.get("quantization_config") or {}
    if not isinstance(quantization, Mapping):
        raise DataFileError(where, "quantization_config", "expected an object")
    quant_id = quant_from_config(quantization)
    if quant_id == "fp8":
        fields["release_dtype"] = "fp8"
    notes = list(extra_notes)
    if quantization and quant_id is None:
        notes.append(f"quantization_config {quantization.get('quant_method')!r} is not one rigplan maps")
    if config.get("auto_map"):
        notes.append("the config names custom model code (auto_map); rigplan reads its fields only, never runs it")
    name = str(config.get("_name_or_path") or Path(launch_path).name or model_id)
    fields |= {
        "id": _model_id(model_id),
        "name": name,
        "family": _family(fields["architecture"]),
        "hf_repo": hf_repo,
        "source": f"{where} (config.json fields)",
    }
    model = build_model(fields, where=where)
    params: int | None = None
    dtypes: dict[str, int] = {}
    if tensors is not None:
        model, params, dtypes = _with_stored_tensors(model, tensors, quantization, where, notes)
    return ModelSource(
        model=model,
        kind=kind,
        location=model_id,
        launch_path=launch_path,
        parameter_count=params,
        dtypes=dtypes,
        quant_id=quant_id,
        quantization=dict(quantization),
        notes=tuple(notes),
        warnings=tuple(warns),
    )


def _with_stored_tensors(
    model: Model, tensors: Mapping[str, TensorHeader], quantization: Mapping[str, Any], where: str, notes: list[str]
) -> tuple[Model, int, dict[str, int]]:
    """``model`` with the parameter count and embedding tie the safetensors headers show (a
    note when the config arithmetic disagrees), the count and the parameters per dtype."""
    params, dtypes = count_stored_parameters(tensors, quantization)
    stored_head = any(n.endswith("lm_head.weight") or n.endswith("lm_head.qweight") for n in tensors)
    model = dataclasses.replace(
        model,
        tie_embeddings=not stored_head,
        published_param_count=params,
        source=f"{where} (config.json fields; parameter count from safetensors headers)",
    )
    formula = arch.count_parameters(model)
    if params and abs(formula - params) / params > PARAM_MISMATCH_NOTE:
        notes.append(
            f"safetensors headers hold {params:,} parameters, the config arithmetic gives "
            f"{formula:,}: memory uses the arithmetic (a vision tower or extra heads are not modelled)"
        )
    return model, params, dtypes
