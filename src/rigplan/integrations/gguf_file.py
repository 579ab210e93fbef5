"""A ``.gguf`` file's header: architecture fields and every tensor's type and size.

Read with the ``gguf`` package's ``GGUFReader`` (ggml-org/llama.cpp ``gguf-py``), which maps the
file and parses the metadata and the tensor table; tensor data is never touched.  Keys follow
the GGUF spec (``docs/gguf.md`` in ggml-org/ggml): ``general.architecture`` names the
architecture ``A`` and ``A.block_count``, ``A.embedding_length``, ``A.attention.head_count`` …
hold its shapes.  Split files (``*-00001-of-00003.gguf``) are read part by part.

Named ``gguf_file`` so it does not shadow the ``gguf`` package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFileError, UnsupportedError
from .sources import FileWeights, ModelSource, build_model

# GGUF ``general.architecture`` -> the Hugging Face class rigplan models (llama.cpp
# src/llama-arch.cpp LLM_ARCH_NAMES; Mistral and Mixtral convert to "llama").
_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3moe": "Qwen3MoeForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "falcon": "FalconForCausalLM",
    "mpt": "MPTForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "deepseek2": "DeepseekV2ForCausalLM",
}
# DeepSeek-V3 converts to "deepseek2" too; V3 has 256 routed experts (V2: 160, V2-Lite: 64).
DEEPSEEK_V3_EXPERTS = 256
# Gemma 2 alternates sliding-window and global layers (one global every 2).
GEMMA2_LAYER_PATTERN = 2
# Architectures whose GGUF fuses gate and up into one ffn_up (Phi-3): still a gated FFN.
_FUSED_GATED = frozenset({"phi3"})
# Architectures with a plain (up, down) FFN.
_PLAIN_FFN = frozenset({"falcon", "mpt"})

_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    """One tensor of the table: name, ggml type name ("q4_k"), shape (ggml order, ne0 first)."""

    name: str
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    path: str
    metadata: Mapping[str, Any]
    tensors: tuple[GGUFTensor, ...]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


def _read_one(path: Path) -> tuple[dict[str, Any], list[GGUFTensor]]:
    try:
        import gguf
    except ImportError:  # pragma: no cover - gguf is in the [hf] extra
        raise UnsupportedError("reading .gguf files needs the gguf package: pip install 'rigplan[hf]'") from None
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise DataFileError(str(path), "header", f"not a readable GGUF file ({exc})") from None
    metadata: dict[str, Any] = {}
    for key, f in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            # Token tables are large; only their length matters here.
            metadata[key + ".count"] = len(f.data)
            continue
        try:
            metadata[key] = f.contents()
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataFileError(str(path), key, f"unreadable value ({exc})") from None
    tensors = [
        GGUFTensor(
            name=t.name,
            type_name=t.tensor_type.name.lower(),
            shape=tuple(int(d) for d in t.shape),
            n_elements=int(t.n_elements),
            n_bytes=int(t.n_bytes),
        )
        for t in reader.tensors
    ]
    return metadata, tensors


def read_gguf_header(path: Path) -> GGUFHeader:
    """Metadata and tensor table of a GGUF file (all parts of a split file).

    Raises:
        DataFileError: not a GGUF file, a missing split part, an unreadable field.
    """
    metadata, tensors = _read_one(path)
    count = int(metadata.get("split.count", 1) or 1)
    if count > 1:
        m = _SPLIT.search(path.name)
        if not m:
            raise DataFileError(str(path), "split.count", f"{count} parts, but the name has no -0000N-of-0000M")
        for i in range(2, count + 1):
            part = path.with_name(_SPLIT.sub(f"-{i:05d}-of-{count:05d}.gguf", path.name))
            if not part.is_file():
                raise DataFileError(str(path), "split.count", f"part {part.name} is missing")
            _, more = _read_one(part)
            tensors.extend(more)
    return GGUFHeader(str(path), metadata, tuple(tensors))


def _get(meta: Mapping[str, Any], where: str, key: str, default: Any = None) -> Any:
    value = meta.get(key, default)
    if value is None:
        raise DataFileError(where, key, "missing")
    return value


def _scalar(meta: Mapping[str, Any], where: str, key: str, default: int | None = None) -> int:
    """An integer field; per-layer arrays are accepted when every layer agrees."""
    value = _get(meta, where, key, default)
    if isinstance(value, list):
        distinct = {v for v in value if v}
        if len(distinct) > 1:
            raise UnsupportedError(
                f"{where}: {key} differs between layers ({sorted(distinct)[:4]}…); per-layer shapes are not modelled"
            )
        value = distinct.pop() if distinct else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataFileError(where, key, f"expected a whole number ≥ 0, got {value!r}")
    return value


def _quant_from_file_type(meta: Mapping[str, Any], tensors: tuple[GGUFTensor, ...]) -> str | None:
    from ..quant import get_quant

    candidates: list[str] = []
    file_type = meta.get("general.file_type")
    if isinstance(file_type, int):
        try:
            import gguf

            name = gguf.LlamaFileType(file_type).name
            candidates.append(name.removeprefix("MOSTLY_").removeprefix("ALL_").lower())
        except ValueError:
            pass
    # Without a file type: the type most 2-D weight bytes are stored in.
    by_type: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_bytes
    if by_type:
        main = max(by_type, key=by_type.__getitem__)
        candidates += [main, f"{main}_m"]
    for c in candidates:
        try:
            return get_quant(c).id
        except LookupError:
            continue
    return None


def model_fields_from_gguf(header: GGUFHeader) -> tuple[dict[str, Any], list[str]]:
    """Model fields from GGUF metadata and the tensor table, and warnings."""
    meta, where, a = header.metadata, header.path, header.architecture
    if not a:
        raise DataFileError(where, "general.architecture", "missing")
    names = {t.name for t in header.tensors}
    warnings_: list[str] = []
    architecture = _ARCHITECTURES.get(a)
    if architecture is None:
        architecture = "LlamaForCausalLM"
        warnings_.append(
            f"{where}: GGUF architecture {a!r} is not one rigplan knows; estimating it as a "
            "Llama-shaped decoder from its metadata (weights use the file's real tensor sizes)"
        )
    hidden = _scalar(meta, where, f"{a}.embedding_length")
    heads = _scalar(meta, where, f"{a}.attention.head_count")
    if heads == 0:
        raise DataFileError(where, f"{a}.attention.head_count", "must be at least 1")
    embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    vocab = (
        meta.get(f"{a}.vocab_size")
        or meta.get("tokenizer.ggml.tokens.count")
        or (embd.shape[1] if embd and len(embd.shape) > 1 else None)
    )
    if not vocab:
        raise DataFileError(where, f"{a}.vocab_size", "missing (and no token table or token_embd tensor)")
    fields: dict[str, Any] = {
        "architecture": architecture,
        "hidden_size": hidden,
        "num_layers": _scalar(meta, where, f"{a}.block_count"),
        "num_heads": heads,
        "num_kv_heads": _scalar(meta, where, f"{a}.attention.head_count_kv", default=heads),
        "ffn_size": _scalar(meta, where, f"{a}.feed_forward_length", default=0),
        "vocab_size": int(vocab),
        "max_context": _scalar(meta, where, f"{a}.context_length"),
        "tie_embeddings": "output.weight" not in names,
        "ffn_kind": "plain"
        if a in _PLAIN_FFN
        else ("gated" if a in _FUSED_GATED or any(".ffn_gate" in n for n in names) else "plain"),
        "attention_bias": any(n.startswith("blk.0.attn_") and n.endswith(".bias") for n in names),
    }
    _moe_and_attention_fields(meta, where, a, hidden // heads, fields)
    return fields, warnings_


def _moe_and_attention_fields(
    meta: Mapping[str, Any], where: str, a: str, default_head_dim: int, fields: dict[str, Any]
) -> None:
    """Add the experts (MoE), MLA or head size, and sliding window that the metadata names."""
    experts = _scalar(meta, where, f"{a}.expert_count", default=0)
    if experts:
        fields |= {
            "moe_num_experts": experts,
            "moe_active_experts": _scalar(meta, where, f"{a}.expert_used_count"),
            "moe_ffn_size": _scalar(meta, where, f"{a}.expert_feed_forward_length", default=fields["ffn_size"]),
            "moe_shared_experts": _scalar(meta, where, f"{a}.expert_shared_count", default=0),
            "moe_first_dense_layers": _scalar(meta, where, f"{a}.leading_dense_block_count", default=0),
        }
        if a == "llama":
            fields["architecture"] = "MixtralForCausalLM"
    if a == "deepseek2":
        _mla_fields(meta, where, a, fields)
        if experts >= DEEPSEEK_V3_EXPERTS:
            fields["architecture"] = "DeepseekV3ForCausalLM"
    else:
        key_length = _scalar(meta, where, f"{a}.attention.key_length", default=0)
        if key_length and key_length != default_head_dim:
            fields["head_dim"] = key_length
    window = _scalar(meta, where, f"{a}.attention.sliding_window", default=0)
    if window:
        fields["sliding_window"] = window
        fields["sliding_window_pattern"] = GEMMA2_LAYER_PATTERN if a == "gemma2" else 1


def _mla_fields(meta: Mapping[str, Any], where: str, a: str, fields: dict[str, Any]) -> None:
    rope = _scalar(meta, where, f"{a}.rope.dimension_count")
    # Converters since 2025 store the absorbed MLA sizes in key_length/value_length and the
    # per-head sizes in key_length_mla/value_length_mla; older files only the per-head ones.
    if f"{a}.attention.key_length_mla" in meta:
        key = _scalar(meta, where, f"{a}.attention.key_length_mla")
        value = _scalar(meta, where, f"{a}.attention.value_length_mla")
    else:
        key = _scalar(meta, where, f"{a}.attention.key_length")
        value = _scalar(meta, where, f"{a}.attention.value_length")
    fields |= {
        "q_lora_rank": _scalar(meta, where, f"{a}.attention.q_lora_rank", default=0),
        "kv_lora_rank": _scalar(meta, where, f"{a}.attention.kv_lora_rank"),
        "qk_rope_head_dim": rope,
        "qk_nope_head_dim": key - rope,
        "v_head_dim": value,
    }


def file_weights_from_header(header: GGUFHeader, quant_id: str | None) -> FileWeights | None:
    """Bytes per block and per non-block tensor, from the tensor table."""
    if quant_id is None:
        return None
    per_layer: dict[int, int] = {}
    other: dict[str, int] = {}
    for t in header.tensors:
        if t.name.startswith("blk."):
            layer = t.name.split(".", 2)[1]
            if not layer.isdigit():
                raise DataFileError(header.path, t.name, "block tensor without a layer number")
            per_layer[int(layer)] = per_layer.get(int(layer), 0) + t.n_bytes
        else:
            stem = t.name.removesuffix(".weight").removesuffix(".bias")
            other[stem] = other.get(stem, 0) + t.n_bytes
    if "token_embd" not in other:
        raise DataFileError(header.path, "token_embd.weight", "missing from the tensor table")
    return FileWeights(quant_id=quant_id, per_layer=per_layer, other=other)


def source_from_gguf(path: Path, *, model_id: str) -> ModelSource:
    """A :class:`ModelSource` from a GGUF file: shapes from metadata, sizes from the table."""
    return source_from_header(
        read_gguf_header(path), where=str(path), model_id=model_id, stem=path.stem, launch_path=str(path)
    )


def source_from_header(header: GGUFHeader, *, where: str, model_id: str, stem: str, launch_path: str) -> ModelSource:
    """A :class:`ModelSource` from a read header (a file's, or bytes uploaded to the page)."""
    fields, warns = model_fields_from_gguf(header)
    params = sum(t.n_elements for t in header.tensors)
    name = header.metadata.get("general.name") or stem
    fields |= {
        "id": model_id.strip(),
        "name": str(name),
        "family": header.architecture,
        "published_param_count": params,
        "source": f"{where} (GGUF metadata and tensor table)",
    }
    model = build_model(fields, where=where)
    layers = {
        int(t.name.split(".")[1])
        for t in header.tensors
        if t.name.startswith("blk.") and t.name.split(".")[1].isdigit()
    }
    if layers and layers != set(range(model.num_layers)):
        raise DataFileError(
            where,
            f"{header.architecture}.block_count",
            f"{model.num_layers} blocks, but the tensor table has blocks {min(layers)}–{max(layers)}",
        )
    quant_id = _quant_from_file_type(header.metadata, header.tensors)
    dtypes: dict[str, int] = {}
    for t in header.tensors:
        dtypes[t.type_name] = dtypes.get(t.type_name, 0) + t.n_elements
    notes = [f"{len(header.tensors)} tensors, {header.tensor_bytes:,} bytes of tensor data"]
    if quant_id is None:
        notes.append("the file type maps to no rigplan quant: weights use the formula")
    return ModelSource(
        model=model,
        kind="gguf",
        location=model_id,
        launch_path=launch_path,
        parameter_count=params,
        dtypes=dtypes,
        quant_id=quant_id,
        weights=file_weights_from_header(header, quant_id),
        notes=tuple(notes),
        warnings=tuple(warns),
    )
