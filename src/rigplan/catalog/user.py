"""The user's own catalogue rows: GPUs and platforms added in the config file.

``config.toml`` (platformdirs ``user_config_dir("rigplan")``) may hold, besides ``[prices]``::

    [[gpus]]
    id = "rtx-4090-48gb"          # any new id; the other fields are those of gpus.toml
    name = "RTX 4090 48 GB (modded)"
    ...

    [[platforms]]
    id = "my-x99"                 # the fields of platforms.toml
    ...

Each row is validated like a catalogue row (unknown keys, missing keys and wrong types are
refused naming the file and the field).  ``source`` defaults to the file and ``as_of`` to the
file's date, since a user's own hardware needs no citation.  A row may not reuse a catalogue id:
give it a new one.  This module only checks and merges rows; :func:`rigplan.load_user_catalog`
(in :mod:`rigplan.edge`) finds and reads the file, and the catalogue it returns is passed to
the pure functions like the built-in one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..errors import CatalogError
from .load import build_record
from .records import GPU, Catalog, Platform

#: The config file's row tables and the record each holds.
USER_TABLES: dict[str, type] = {"gpus": GPU, "platforms": Platform}


def _rows(data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    rows = data.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CatalogError(path, key, f"expected [[{key}]] tables")
    return rows


def merge_user_rows(catalog: Catalog, data: dict[str, Any], path: str, as_of: dt.date) -> Catalog:
    """``catalog`` with the ``[[gpus]]`` and ``[[platforms]]`` rows of a parsed config file added.

    Raises:
        CatalogError: a malformed row, a missing id, or an id the catalogue already has.
    """
    gpus = dict(catalog.gpus)
    platforms = dict(catalog.platforms)
    for key, cls in USER_TABLES.items():
        target: dict[str, Any] = gpus if cls is GPU else platforms
        for i, row in enumerate(_rows(data, key, path)):
            where = f"{key}[{i}]"
            ident = row.get("id")
            if not isinstance(ident, str) or not ident.strip():
                raise CatalogError(path, f"{where}.id", "missing (give the row a new id)")
            ident = ident.strip().lower()
            if ident in target:
                raise CatalogError(
                    path, f"{where}.id", f"{ident!r} is already in the catalogue: give your row a new id"
                )
            full = {"source": f"your config file {path}", "as_of": as_of, **row, "id": ident}
            target[ident] = build_record(cls, full, path=path, where=where)
    return dataclasses.replace(catalog, gpus=gpus, platforms=platforms)
