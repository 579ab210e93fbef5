"""Models uploaded as a config.json through the page: parsed safely (size and nesting limits,
no code run), kept in memory under an id made of the content's hash, so that the same file
always gets the same id and every cached answer stays true."""

from __future__ import annotations

import collections
import hashlib
import re
import threading
from typing import Any

from rigplan import DataFileError, Model, UnknownModelError

#: Uploaded models kept (oldest dropped first): each is a small record.
UPLOADS_KEPT = 256
PREFIX = "upload-"
#: Hex digits of the content hash in an id: 48 bits, no collision among a few hundred uploads.
ID_HEX_DIGITS = 12

#: The uploaded models a request names, by id: what a worker process needs to answer it.
Carried = tuple[tuple[str, Model], ...]
_UPLOAD_ID = re.compile(f"{PREFIX}[0-9a-f]{{{ID_HEX_DIGITS}}}")

_models: collections.OrderedDict[str, Model] = collections.OrderedDict()
_lock = threading.Lock()


def register(name: str, config_text: str) -> dict[str, Any]:
    """Parse ``config_text`` (a config.json) and keep the model; its id, fields and notes.

    Raises:
        DataFileError: not JSON, too deep, not an object, or fields rigplan cannot use.
        UnsupportedError: an architecture rigplan does not model.
    """
    from rigplan import loads_json, source_from_config

    where = f"uploaded config.json ({name})"
    config = loads_json(config_text, where)
    if not isinstance(config, dict):
        raise DataFileError(where, "json", "expected a JSON object at the top level")
    model_id = _upload_id(name, config_text.encode())
    return _kept(model_id, source_from_config(config, where=where, model_id=model_id, kind="config", launch_path=name))


def register_gguf(name: str, header: bytes) -> dict[str, Any]:
    """Parse ``header`` (the first bytes of a .gguf file, up to its tensor table) and keep the
    model; its id, fields and notes (as :func:`register`).

    Raises:
        DataFileError: not GGUF, cut inside the header, over the size limit; names the field.
        UnsupportedError: an architecture rigplan does not model, or no gguf package.
    """
    from rigplan import source_from_gguf_bytes

    model_id = _upload_id(name, header)
    return _kept(model_id, source_from_gguf_bytes(header, name=name, model_id=model_id))


def _upload_id(name: str, content: bytes) -> str:
    return PREFIX + hashlib.sha256(name.encode() + b"\0" + content).hexdigest()[:ID_HEX_DIGITS]


def _kept(model_id: str, source: Any) -> dict[str, Any]:
    from rigplan import model_dict

    restore(((model_id, source.model),))
    return {
        "id": model_id,
        "model": model_dict(source.model),
        "notes": list(source.notes),
        "warnings": list(source.warnings),
    }


def lookup(text: str) -> Model | None:
    """The uploaded model of an ``upload-…`` id; None for any other name.

    Raises:
        UnknownModelError: an upload id this server does not hold (restarted, or dropped).
    """
    if not text.startswith(PREFIX):
        return None
    with _lock:
        found = _models.get(text)
    if found is None:
        err = UnknownModelError(text, [])
        err.args = (f"unknown uploaded model {text!r}: this server no longer holds it; upload its config.json again",)
        raise err
    return found


def referenced(request_json: str) -> Carried:
    """The uploaded models this server holds whose ids appear in ``request_json``."""
    if PREFIX not in request_json:
        return ()
    with _lock:
        return tuple((i, _models[i]) for i in dict.fromkeys(_UPLOAD_ID.findall(request_json)) if i in _models)


def restore(carried: Carried) -> None:
    """Hold ``carried`` models (in a worker process, which did not see their upload)."""
    if not carried:
        return
    with _lock:
        for model_id, model in carried:
            _models[model_id] = model
            _models.move_to_end(model_id)
        while len(_models) > UPLOADS_KEPT:
            _models.popitem(last=False)
