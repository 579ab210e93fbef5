"""What a model file or repo holds: the records :mod:`.sources` returns, and the safetensors
headers (tensor names, dtypes, shapes; never tensor data) with the parameters they store."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog.records import Model
from ..errors import DataFileError


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
# safetensors headers: 8-byte little-endian length, then a JSON table of tensors
# (huggingface/safetensors README, "Format").  Only the header is read.
# ---------------------------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a malformed file names itself and the position."""
    from ..textfiles import read_json as read_limited

    data = read_limited(path)
    if not isinstance(data, dict):
        raise DataFileError(str(path), "json", "expected a JSON object at the top level")
    return data


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
