"""A GGUF header sent as bytes (the web page's upload): the metadata and the tensor table of
the first bytes of a ``.gguf`` file, without its tensor data, parsed by the ``gguf`` package's
``GGUFReader`` with three guards for untrusted input:

* a read past the bytes sent is an error naming the field being read (no short arrays);
* at most :data:`MAX_HEADER_ITEMS` values in all (token tables included), so a forged array
  length cannot keep the parser busy;
* tensor data is never read: only each tensor's name, type and shape (its size follows from
  them), so a header alone is enough.

The model is then built exactly as from a local file (:func:`.gguf_file.source_from_header`).
"""

from __future__ import annotations

import functools
import tempfile
from typing import Any, Literal

from ..errors import DataFileError, UnsupportedError
from .gguf_file import GGUFHeader, GGUFTensor, source_from_header
from .sources import ModelSource

#: The most bytes of a file's start taken as its header: a GGUF header with a 256k-token
#: vocabulary (Gemma 3) and its merges is ~8–10 MiB; the tensor table after it is small.
HEADER_LIMIT_BYTES = 16 * 1024 * 1024
#: Values the header may hold in all: Gemma 3's token, score and type tables are ~790,000,
#: Llama 3's tokens, types and merges ~540,000.
MAX_HEADER_ITEMS = 2_000_000


class _Truncated(Exception):
    """The bytes ran out (or the item budget did) inside ``field``."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


def read_gguf_header_bytes(data: bytes, where: str) -> GGUFHeader:
    """Metadata and tensor table from the first bytes of a GGUF file.

    Raises:
        DataFileError: not GGUF, over :data:`HEADER_LIMIT_BYTES`, cut inside the header (names
            the field), or a value that does not decode.
        UnsupportedError: the gguf package is missing.
    """
    if not data:
        raise DataFileError(where, "header", "empty: send the first bytes of a .gguf file")
    if len(data) > HEADER_LIMIT_BYTES:
        raise DataFileError(where, "header", f"{len(data):,} bytes; send at most the first {HEADER_LIMIT_BYTES:,}")
    reader_class = _header_reader_class()
    with tempfile.TemporaryFile() as spool:  # GGUFReader maps a file; this one has no name
        spool.write(data)
        spool.flush()
        try:
            reader = reader_class(spool)
        except _Truncated as exc:
            raise DataFileError(where, exc.field, str(exc)) from None
        except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
            raise DataFileError(where, "header", f"not a readable GGUF header ({exc})") from None
    metadata: dict[str, Any] = {}
    for key, f in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            metadata[key + ".count"] = len(f.data)  # token tables: only their length is used
            continue
        try:
            metadata[key] = f.contents()
        except (ValueError, UnicodeDecodeError, IndexError) as exc:
            raise DataFileError(where, key, f"unreadable value ({exc})") from None
    return GGUFHeader(where, metadata, tuple(reader.table))


def source_from_gguf_bytes(data: bytes, *, name: str, model_id: str) -> ModelSource:
    """A model from the first bytes of a GGUF file (see :func:`read_gguf_header_bytes`)."""
    where = f"uploaded GGUF header ({name})"
    header = read_gguf_header_bytes(data, where)
    if int(header.metadata.get("split.count", 1) or 1) > 1 and not header.tensors:
        raise DataFileError(where, "split.count", "a later part of a split file: upload the first part")
    return source_from_header(header, where=where, model_id=model_id, stem=name, launch_path=name)


@functools.cache
def _header_reader_class() -> Any:
    try:
        import gguf
        import numpy as np
    except ImportError:  # pragma: no cover - gguf is in the [hf] extra
        raise UnsupportedError("reading GGUF headers needs the gguf package: pip install 'rigplan[hf]'") from None

    class HeaderReader(gguf.GGUFReader):  # type: ignore[misc]
        """GGUFReader over untrusted bytes: bounded, strict about the end, no tensor data."""

        def __init__(self, spool: Any) -> None:
            self.items_left = MAX_HEADER_ITEMS
            self.reading = "header"
            self.table: list[GGUFTensor] = []
            super().__init__(spool)

        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            if offset + np.dtype(dtype).itemsize * int(count) > len(self.data):
                raise self.cut(offset)
            return super()._get(offset, dtype, count, override_order)

        def cut(self, offset: int) -> _Truncated:
            return _Truncated(
                self.reading, f"the header ends inside this field (byte {offset:,}); send more of the file"
            )

        def spend(self, items: int) -> None:
            self.items_left -= items
            if self.items_left < 0:
                raise _Truncated(self.reading, f"more than {MAX_HEADER_ITEMS:,} values in the header")

        def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
            self.spend(1)
            if self.reading.startswith("tokenizer.ggml.") and raw_type == gguf.GGUFValueType.ARRAY:
                return self.token_table(orig_offs)
            return super()._get_field_parts(orig_offs, raw_type)

        def token_table(self, offs: int) -> Any:
            return _token_table(self, offs)

        def _build_fields(self, offs: int, count: int) -> int:
            for _ in range(int(count)):
                key_length = int(self._get(offs, np.uint64)[0])
                self.reading = bytes(self._get(offs + 8, np.uint8, min(key_length, 256))).decode("utf-8", "replace")
                offs = super()._build_fields(offs, 1)
            self.reading = "tensor table"
            return offs

        def _build_tensors(self, start_offs: int, fields: list[Any]) -> None:
            self.table = _tensor_table(fields)

    return HeaderReader


def _after_strings(buf: memoryview, pos: int, count: int, order: Literal["little", "big"]) -> int:
    """Where ``count`` GGUF strings (u64 length, then the bytes) starting at ``pos`` end; minus
    the offset of the one cut short if the bytes run out first."""
    size = len(buf)
    for _ in range(count):
        if pos + 8 > size:
            return -pos
        pos += 8 + int.from_bytes(buf[pos : pos + 8], order)
        if pos > size:
            return -pos
    return pos


def _token_table(reader: Any, offs: int) -> Any:
    """A tokenizer array stepped over (only its length is used): GGUFReader's own per-item
    parse takes ~20 s for a 300,000-token vocabulary.  ``(size, parts, data indices, types)``
    as ``GGUFReader._get_field_parts`` returns them."""
    import gguf
    import numpy as np

    item_type, count = reader._get(offs, np.uint32), reader._get(offs + 4, np.uint64)
    n = int(count[0])
    reader.spend(n)
    kind = gguf.GGUFValueType(int(item_type[0]))
    end = offs + 12
    if kind == gguf.GGUFValueType.STRING:
        end = _after_strings(memoryview(reader.data), end, n, "big" if reader.byte_order == "S" else "little")
        if end < 0:
            raise reader.cut(-end)
    else:
        end += np.dtype(reader.gguf_scalar_to_np[kind]).itemsize * n
        if end > len(reader.data):
            raise reader.cut(offs)
    return end - offs, [item_type, count], range(n), [gguf.GGUFValueType.ARRAY, kind]


def _tensor_table(fields: list[Any]) -> list[GGUFTensor]:
    """Name, type, shape and size of each tensor from its table entry; its data is not read."""
    import gguf
    import numpy as np

    table: list[GGUFTensor] = []
    seen: set[str] = set()
    for field in fields:
        _, name_data, _, dims, raw_dtype, _ = field.parts
        name = str(bytes(name_data), encoding="utf-8")
        if name in seen:
            raise ValueError(f"tensor {name} twice")
        seen.add(name)
        kind = gguf.GGMLQuantizationType(int(raw_dtype[0]))
        block, size = gguf.GGML_QUANT_SIZES[kind]
        n = int(np.prod(dims.astype(object))) if len(dims) else 1
        table.append(GGUFTensor(name, kind.name.lower(), tuple(int(d) for d in dims), n, n * size // block))
    return table
