"""Models from files and repos: a ``config.json``, a model folder, a ``.gguf`` file or a
Hugging Face repo id.

Only configuration and headers are read: ``config.json``, ``model.safetensors.index.json`` and
the JSON header at the start of each ``.safetensors`` file (never tensor data), a GGUF file's
metadata and tensor table (through the ``gguf`` package), or the same from the Hugging Face Hub
(``huggingface_hub``, cached).  No model code is ever executed (no ``trust_remote_code``).

>>> src = resolve_source("path/to/Meta-Llama-3-8B")     # doctest: +SKIP
>>> src.model.num_layers, src.parameter_count, src.quant_id
(32, 8030261248, None)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import arch
from ..catalog.load import build_record
from ..catalog.records import Model
from ..errors import CatalogError, DataFileError, InvalidValueError, UnsupportedError


class ModelSourceWarning(UserWarning):
    """A model file was read with an assumption (e.g. an architecture rigplan does not know)."""


# ---------------------------------------------------------------------------------------------
# What a source gives: the Model record plus what only a file knows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileWeights:
    """Real bytes of a model file's tensors, grouped the way the memory model needs them.

    ``per_layer[i]`` is every tensor of block ``i`` (``blk.i.*``); ``other`` holds the tensors
    outside blocks by name without ``.weight``/``.bias`` (``token_embd``, ``output``,
    ``output_norm``, ``rope_freqs``).  They apply when the estimate uses the file's own quant.
    """

    quant_id: str
    per_layer: Mapping[int, int]
    other: Mapping[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.per_layer.values()) + sum(self.other.values())


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A model read from a file or repo: the :class:`Model` and what the files say beyond it.

    ``kind`` is "config" | "folder" | "gguf" | "hf"; ``location`` the path or repo id given;
    ``launch_path`` what an engine should be pointed at (folder, .gguf file or repo id).
    ``parameter_count`` and ``dtypes`` (dtype -> parameters stored in it) come from
    safetensors or GGUF headers when there are any.  ``quant_id`` is the quant the files hold
    (GGUF file type, ``quantization_config``), None for plain 16/32-bit checkpoints.
    """

    model: Model
    kind: str
    location: str
    launch_path: str
    parameter_count: int | None = None
    dtypes: Mapping[str, int] = field(default_factory=dict)
    quant_id: str | None = None
    quantization: Mapping[str, Any] = field(default_factory=dict)
    weights: FileWeights | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "kind": self.kind,
            "location": self.location,
            "architecture": self.model.architecture,
            "parameter_count": self.parameter_count,
            "dtypes": dict(self.dtypes),
            "quant": self.quant_id,
            "weights_bytes": self.weights.total_bytes if self.weights else None,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------

# "org/name" or "org/name@revision": the Hub's repo id grammar (letters, digits, - _ .).
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*(?:@[\w.\-/]+)?$")
_PATH_HINT = re.compile(r"^(?:[./~]|[A-Za-z]:[\\/])|\.(?:json|gguf|safetensors)$", re.IGNORECASE)

_CACHE: dict[tuple[Any, ...], ModelSource] = {}


def clear_cache() -> None:
    """Forget models read so far (files are re-read anyway when they change on disk)."""
    _CACHE.clear()


def looks_like_repo_id(text: str) -> bool:
    """Whether ``text`` has the form of a Hugging Face repo id ("org/name")."""
    return bool(_REPO_ID.match(text.strip())) and not _PATH_HINT.search(text.strip())


def resolve_source(text: str) -> ModelSource | None:
    """The model a path or repo id names, or None when ``text`` is neither.

    Paths: a ``config.json``, a model folder (``config.json`` + safetensors), a ``.gguf``
    file (or a folder holding exactly one).  Anything of the form "org/name" that is not a
    local path is a Hugging Face repo id.

    Raises:
        DataFileError: a malformed file, naming the file and the field.
        UnsupportedError: a file rigplan cannot read shapes from.
        RigplanError: Hub failures (offline without a cache, gated repo) from ``hf.py``.
    """
    text = text.strip()
    if not text:
        return None
    found = _existing_path(text)
    if found is not None:
        path, stat = found
        key: tuple[Any, ...] = ("path", str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _CACHE:
            _CACHE[key] = _load_path(path, text)
        return _CACHE[key]
    if looks_like_repo_id(text):
        key = ("hf", text)
        if key not in _CACHE:
            from .hf import load_hf_source

            _CACHE[key] = load_hf_source(text)
        return _CACHE[key]
    if _PATH_HINT.search(text):
        raise DataFileError(text, "path", "no such file or folder")
    return None


def _existing_path(text: str) -> tuple[Path, os.stat_result] | None:
    """The path ``text`` names and its stat, or None (also for text no OS path can be:
    NUL bytes, names too long, ``~user`` without a home)."""
    try:
        path = Path(text).expanduser()
    except (RuntimeError, ValueError):  # "~user" with no such user; a NUL byte
        path = Path(text)
    try:
        return path, path.stat()
    except (OSError, ValueError):
        return None


def load_model_source(text: str) -> Model | None:
    """A :class:`Model` from a path or repo id, or None when ``text`` names neither.

    Called by :func:`rigplan.estimate.resolve_model_input` when ``text`` is not a catalogue id.
    Warnings about assumptions (unknown architecture) are issued as :class:`ModelSourceWarning`.
    """
    source = resolve_source(text)
    if source is None:
        return None
    for message in source.warnings:
        warnings.warn(message, ModelSourceWarning, stacklevel=2)
    return source.model


def file_weights(text: str, quant: str | None = None) -> FileWeights | None:
    """Real tensor sizes of a GGUF ``text`` for the memory model, when ``quant`` is the file's.

    None for sources without per-tensor sizes (config.json, safetensors, Hub) or when the
    estimate asks for another quant than the file holds (then rigplan's formula applies).
    This is the hook ``rigplan.estimate`` calls (see docs/integrations.md, "GGUF sizes").
    """
    from ..quant import get_quant

    source = resolve_source(text)
    if source is None or source.weights is None:
        return None
    if quant is not None and get_quant(quant).id != source.weights.quant_id:
        return None
    return source.weights


def source_quant(text: str) -> str | None:
    """The quant id a model file holds (GGUF file type, ``quantization_config``), or None."""
    source = resolve_source(text)
    return source.quant_id if source else None


# ---------------------------------------------------------------------------------------------
# Local paths
# ---------------------------------------------------------------------------------------------


def _load_path(path: Path, given: str) -> ModelSource:
    if path.is_dir():
        config = path / "config.json"
        if config.is_file():
            return _load_folder(path, given)
        ggufs = sorted(p for p in path.glob("*.gguf") if not _is_later_split(p))
        if len(ggufs) == 1:
            return _load_gguf(ggufs[0], given)
        if ggufs:
            names = ", ".join(p.name for p in ggufs[:4])
            raise DataFileError(str(path), "*.gguf", f"several GGUF files ({names}); pass one of them")
        raise DataFileError(str(path), "config.json", "the folder has no config.json and no .gguf file")
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return _load_gguf(path, given)
    if suffix == ".json" and path.name != "model.safetensors.index.json":
        return _load_config_file(path, given)
    if suffix == ".safetensors" or path.name == "model.safetensors.index.json":
        if (path.parent / "config.json").is_file():
            return _load_folder(path.parent, given)
        raise DataFileError(str(path.parent), "config.json", "missing next to the safetensors file")
    raise DataFileError(str(path), "file", "not a config.json, model folder, .gguf or .safetensors file")


def _is_later_split(path: Path) -> bool:
    m = _SPLIT_NAME.search(path.name)
    return m is not None and int(m.group(1)) > 1


_SPLIT_NAME = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a malformed file names itself and the position."""
    from ..textfiles import read_json as read_limited

    data = read_limited(path)
    if not isinstance(data, dict):
        raise DataFileError(str(path), "json", "expected a JSON object at the top level")
    return data


def _load_config_file(path: Path, given: str) -> ModelSource:
    config = read_json(path)
    folder = path.parent
    if any(folder.glob("*.safetensors")) and path.name == "config.json":
        return _load_folder(folder, given)
    return source_from_config(config, where=str(path), model_id=given, kind="config", launch_path=str(folder))


def _load_folder(folder: Path, given: str) -> ModelSource:
    config_path = folder / "config.json"
    config = read_json(config_path)
    tensors, notes = read_safetensors_folder(folder)
    return source_from_config(
        config,
        where=str(config_path),
        model_id=given,
        kind="folder",
        launch_path=str(folder),
        tensors=tensors,
        extra_notes=notes,
    )


def _load_gguf(path: Path, given: str) -> ModelSource:
    from .gguf_file import source_from_gguf

    return source_from_gguf(path, model_id=given)


# ---------------------------------------------------------------------------------------------
# safetensors headers: 8-byte little-endian length, then a JSON table of tensors
# (huggingface/safetensors README, "Format").  Only the header is read.
# ---------------------------------------------------------------------------------------------

SAFETENSORS_LENGTH_BYTES = 8
# A header larger than this is refused rather than read (the format's own reference
# implementation caps it at 100 MB: safetensors/src/tensor.rs MAX_HEADER_SIZE).
SAFETENSORS_MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True, slots=True)
class TensorHeader:
    dtype: str
    shape: tuple[int, ...]

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def read_safetensors_header(path: Path) -> dict[str, TensorHeader]:
    """Name -> dtype and shape of every tensor in one ``.safetensors`` file (header only)."""
    try:
        with path.open("rb") as f:
            raw_len = f.read(SAFETENSORS_LENGTH_BYTES)
            if len(raw_len) < SAFETENSORS_LENGTH_BYTES:
                raise DataFileError(str(path), "header", "file too short for a safetensors header")
            (length,) = struct.unpack("<Q", raw_len)
            if length > SAFETENSORS_MAX_HEADER_BYTES:
                raise DataFileError(str(path), "header", f"header length {length} is implausibly large")
            raw = f.read(length)
    except OSError as exc:
        raise DataFileError(str(path), "file", f"cannot be read ({exc})") from None
    if len(raw) < length:
        raise DataFileError(str(path), "header", f"truncated: {len(raw)} of {length} header bytes")
    from ..textfiles import decode_text, loads_json

    table = loads_json(decode_text(raw, str(path)), str(path))
    if not isinstance(table, dict):
        raise DataFileError(str(path), "header", "expected a JSON object")
    return tensor_table(table, str(path))


def tensor_table(table: Mapping[str, Any], where: str) -> dict[str, TensorHeader]:
    """Validate a safetensors header table (also the Hub's metadata, same layout)."""
    out: dict[str, TensorHeader] = {}
    for name, info in table.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, Mapping) or "dtype" not in info or "shape" not in info:
            raise DataFileError(where, name, "expected {dtype, shape, data_offsets}")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise DataFileError(where, f"{name}.shape", f"expected a list of sizes, got {shape!r}")
        out[name] = TensorHeader(str(info["dtype"]).upper(), tuple(shape))
    return out


def read_safetensors_folder(folder: Path) -> tuple[dict[str, TensorHeader] | None, tuple[str, ...]]:
    """Every tensor header of a model folder, following ``model.safetensors.index.json``."""
    index_path = folder / "model.safetensors.index.json"
    files: list[Path]
    if index_path.is_file():
        index = read_json(index_path)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise DataFileError(str(index_path), "weight_map", "missing or empty")
        names = sorted(set(map(str, weight_map.values())))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            # The index alone is enough for names, not for shapes: say what is missing.
            raise DataFileError(
                str(index_path),
                "weight_map",
                f"{len(missing)} shard(s) listed but not present, e.g. {missing[0]}",
            )
        files = [folder / n for n in names]
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None, ("no safetensors files: parameter count from config.json arithmetic",)
    tensors: dict[str, TensorHeader] = {}
    for f in files:
        tensors.update(read_safetensors_header(f))
    return tensors, ()


# Tensors of quantised checkpoints that are not parameters (scales, zero points, indices).
_NOT_PARAMETERS = re.compile(
    r"\.(scales|qzeros|g_idx|weight_scale|weight_scale_inv|input_scale|weight_zero_point|"
    r"absmax|quant_map|nested_absmax|nested_quant_map|SCB|k_scale|v_scale)$"
    r"|\.quant_state\.|\.weight\.quant_state"
)
INT32_BITS = 32
BNB_4BIT_PER_BYTE = 2  # bitsandbytes packs two 4-bit codes per uint8


def count_stored_parameters(
    tensors: Mapping[str, TensorHeader], quantization: Mapping[str, Any]
) -> tuple[int, dict[str, int]]:
    """Exact parameter count and parameters per stored dtype from tensor headers.

    GPTQ/AWQ ``qweight`` int32 tensors hold 32/bits weights each; bitsandbytes 4-bit ``weight``
    uint8 tensors hold two; scales, zero points and group indices are not parameters.
    """
    method = str(quantization.get("quant_method", "")).lower()
    bits = int(quantization.get("bits", quantization.get("w_bit", 4)) or 4)
    total = 0
    by_dtype: dict[str, int] = {}
    for name, t in tensors.items():
        if _NOT_PARAMETERS.search(name):
            continue
        n = t.n_elements
        if name.endswith(".qweight") and t.dtype == "I32":
            n = n * INT32_BITS // bits
        elif method == "bitsandbytes" and t.dtype == "U8" and quantization.get("load_in_4bit"):
            n = n * BNB_4BIT_PER_BYTE
        total += n
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + n
    return total, by_dtype


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


def model_fields_from_config(config: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Model fields from a Hugging Face ``config.json`` (Llama, Mistral, Mixtral, Qwen2/3 and
    their MoE forms, Gemma/Gemma 2, Falcon, MPT, Phi-3, DeepSeek-V2/V3), and warnings.

    Raises:
        DataFileError: a required key is missing or has the wrong type, naming it.
        UnsupportedError: an unknown architecture without the fields to read shapes from.
    """
    cfg = _flatten_config(config)
    warnings_: list[str] = []
    architecture, warning = _architecture(cfg, where)
    if warning:
        warnings_.append(warning)
    model_type = str(cfg.get("model_type", ""))
    fields: dict[str, Any] = {"architecture": architecture}

    if architecture == "MPTForCausalLM":
        d = _int(cfg, where, "d_model")
        heads = _int(cfg, where, "n_heads")
        fields |= {
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
        return _with_dtype(fields, cfg), warnings_

    hidden = _int(cfg, where, "hidden_size", "n_embed", "d_model")
    heads = _int(cfg, where, "num_attention_heads", "n_head")
    if heads == 0:
        raise _config_error(where, "num_attention_heads", "must be at least 1")
    fields |= {
        "hidden_size": hidden,
        "num_layers": _int(cfg, where, "num_hidden_layers", "n_layer"),
        "num_heads": heads,
        "vocab_size": _int(cfg, where, "vocab_size"),
    }
    tied_default = model_type in _TIED_BY_DEFAULT
    tie = cfg.get("tie_word_embeddings", tied_default)
    fields["tie_embeddings"] = bool(tie)

    if architecture in ("FalconForCausalLM", "RWForCausalLM"):
        if cfg.get("new_decoder_architecture"):
            kv = _int(cfg, where, "num_kv_heads", "n_head_kv", default=heads)
        elif cfg.get("multi_query", True):
            kv = 1
        else:
            kv = heads
        fields |= {
            "num_kv_heads": kv,
            "ffn_kind": "plain",
            "ffn_size": _int(cfg, where, "ffn_hidden_size", default=4 * hidden),
            "attention_bias": bool(cfg.get("bias", False)),
            "max_context": _int(cfg, where, "max_position_embeddings", default=FALCON_DEFAULT_CONTEXT),
        }
        return _with_dtype(fields, cfg), warnings_

    fields["num_kv_heads"] = _int(cfg, where, "num_key_value_heads", default=heads)
    fields["ffn_size"] = _int(cfg, where, "intermediate_size")
    fields["max_context"] = _int(
        cfg,
        where,
        "max_position_embeddings",
        "max_sequence_length",
        "seq_length",
        default=UNKNOWN_DEFAULT_CONTEXT,
    )
    head_dim = cfg.get("head_dim")
    if head_dim is not None:
        head_dim = _int(cfg, where, "head_dim")
        if head_dim != hidden // heads:
            fields["head_dim"] = head_dim
    # Qwen2 (and Qwen2-MoE) always carry q/k/v biases and their config has no key for it.
    bias_default = model_type in ("qwen2", "qwen2_moe")
    fields["attention_bias"] = bool(cfg.get("attention_bias", cfg.get("qkv_bias", bias_default)))
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


def environ_flag(name: str) -> bool:
    """An environment switch as huggingface_hub reads it ("1", "true", "yes", "on")."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
