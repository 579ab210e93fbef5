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

import os
import re
import warnings
from pathlib import Path
from typing import Any

from ..catalog.records import Model
from ..errors import DataFileError
from .hf_config import build_model, quant_from_config, source_from_config
from .model_source import (
    FileWeights,
    ModelSource,
    ModelSourceWarning,
    TensorHeader,
    count_stored_parameters,
    read_json,
    read_safetensors_folder,
    read_safetensors_header,
    tensor_table,
)

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


def environ_flag(name: str) -> bool:
    """An environment switch as huggingface_hub reads it ("1", "true", "yes", "on")."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


__all__ = [
    "FileWeights",
    "ModelSource",
    "ModelSourceWarning",
    "TensorHeader",
    "build_model",
    "clear_cache",
    "count_stored_parameters",
    "environ_flag",
    "file_weights",
    "load_model_source",
    "looks_like_repo_id",
    "quant_from_config",
    "read_json",
    "read_safetensors_folder",
    "read_safetensors_header",
    "resolve_source",
    "source_from_config",
    "source_quant",
    "tensor_table",
]
