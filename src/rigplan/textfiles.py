"""Reading the user's text files safely: size and nesting limits, errors that name file and line.

A 100,000-deep ``[[[[…]]]]`` would exhaust Python's recursion limit inside ``json.loads``; a
binary file handed as ``config.toml`` fails to decode.  Every reader of a file the user names
goes through here, so each such input becomes one :class:`~rigplan.errors.DataFileError` line:
``config.toml: toml: not UTF-8 text (byte 0x89 on line 1)``.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import DataFileError

#: Largest text file rigplan reads (config.json, safetensors index, config.toml, bench results).
#: Hugging Face's largest safetensors index files are a few MB; 64 MiB leaves ample room.
MAX_TEXT_BYTES = 64 * 2**20
#: Deepest nesting accepted in JSON. Model configs nest 3–4 levels (text_config.rope_scaling);
#: Python's own recursion limit (1,000) is the hard wall we stay well below.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def read_text(path: Path | str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, at most ``max_bytes`` long.

    Raises:
        DataFileError: unreadable, too large, or not UTF-8 (naming the line of the bad byte).
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise DataFileError(str(p), "file", f"cannot read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise DataFileError(str(p), "file", f"larger than {max_bytes // 2**20} MiB; is it the right file?")
    return decode_text(raw, str(p))


def decode_text(raw: bytes, source: str) -> str:
    """``raw`` as UTF-8; a binary file is named with the line of its first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start]
        raise DataFileError(source, "file", f"not UTF-8 text (byte 0x{bad:02x} on line {line})") from None


def json_depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads_json(text: str, source: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON with a nesting limit.

    Raises:
        DataFileError: malformed (with line) or nested deeper than ``max_depth``.
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise DataFileError(source, "json", f"nested {depth:,} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(source, "json", f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DataFileError(source, "json", "nested too deeply") from None


def loads_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML; a syntax error names the file and tomllib's line and column.

    Raises:
        DataFileError: malformed TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(source, "toml", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise DataFileError(source, "toml", "nested too deeply") from None


def read_json(path: Path | str) -> Any:
    """:func:`read_text` then :func:`loads_json`."""
    return loads_json(read_text(path), str(path))


def read_toml(path: Path | str) -> dict[str, Any]:
    """:func:`read_text` then :func:`loads_toml`."""
    return loads_toml(read_text(path), str(path))
