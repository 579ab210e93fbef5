"""Where the user's calibration lives (``calibration.json`` in the user config dir) and how it
is read, validated and rewritten safely: atomically (a temporary file in the same folder, fsync,
``os.replace``) under an exclusive lock, so a crash or a second writer never leaves it half
written or loses the other writer's rows."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DataFileError, RigplanError
from ..speed.profile import Spread, UserCorrection

APP_NAME = "rigplan"
STORE_FILE = "calibration.json"
LOCK_FILE = "calibration.lock"
SCHEMA = 1
#: How long a writer waits for the lock before giving up (seconds).
LOCK_TIMEOUT_S = 30.0
LOCK_POLL_S = 0.05

T = TypeVar("T")


def config_dir() -> Path:
    """rigplan's folder in the user config dir (``~/.config/rigplan`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def store_path() -> Path:
    return config_dir() / STORE_FILE


def _retry(path: Path, attempt: Callable[[], T], busy: type[OSError]) -> T:
    """``attempt()`` until it stops raising ``busy`` (another writer holds the lock), polling
    every LOCK_POLL_S for at most LOCK_TIMEOUT_S."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            return attempt()
        except busy:
            if time.monotonic() > deadline:
                raise DataFileError(
                    str(path), "lock", "another rigplan is writing the calibration; try again"
                ) from None
            time.sleep(LOCK_POLL_S)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/calibration.lock`` (fcntl where available, else an
    O_EXCL lock file), so read-modify-write cycles of two writers do not interleave."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        with open(path, "a+") as handle:
            _retry(path, lambda: fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB), OSError)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return
    fd = _retry(path, lambda: os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY), FileExistsError)  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        os.close(fd)
        os.unlink(path)


def write_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` via a uniquely named temp file and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_store(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": SCHEMA, "entries": []}
    from ..textfiles import read_json

    try:
        doc = read_json(path)
    except DataFileError as exc:
        raise DataFileError(
            str(path), "json", f"unreadable ({exc}); `rigplan calibrate --reset` starts again"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise DataFileError(str(path), "entries", "missing; `rigplan calibrate --reset` starts again")
    if doc.get("schema") != SCHEMA:
        raise DataFileError(str(path), "schema", f"expected {SCHEMA}, got {doc.get('schema')!r}")
    return doc


def _spread_from(values: Any, path: str, where: str) -> Spread | None:
    if values is None:
        return None
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise DataFileError(path, where, f"expected [low, high], got {values!r}")
    return Spread(float(values[0]), float(values[1]))


def _correction(entry: Any, path: str, i: int) -> UserCorrection:
    where = f"entries[{i}]"
    if not isinstance(entry, dict):
        raise DataFileError(path, where, "expected an object")
    for key in ("engine", "gpus", "rows", "fitted_on"):
        if key not in entry:
            raise DataFileError(path, f"{where}.{key}", "missing")
    factors = {}
    for key in ("decode_factor", "prefill_factor"):
        v = entry.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not v > 0):
            raise DataFileError(path, f"{where}.{key}", f"expected a positive number, got {v!r}")
        factors[key] = None if v is None else float(v)
    gpus = entry["gpus"]
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        raise DataFileError(path, f"{where}.gpus", "expected a list of GPU ids")
    rows = entry["rows"]
    if not isinstance(rows, list):
        raise DataFileError(path, f"{where}.rows", "expected a list")
    return UserCorrection(
        engine=str(entry["engine"]),
        gpus=tuple(gpus),
        decode_factor=factors["decode_factor"],
        prefill_factor=factors["prefill_factor"],
        decode_spread=_spread_from(entry.get("decode_spread"), path, f"{where}.decode_spread"),
        prefill_spread=_spread_from(entry.get("prefill_spread"), path, f"{where}.prefill_spread"),
        rows=len(rows),
        fitted_on=str(entry["fitted_on"]),
    )


def engine_key(engine: str) -> str:
    """Calibrations are shared by engines that run the same code (ollama = llama.cpp)."""
    from ..engines import LLAMA_CPP, get_engine

    eng = get_engine(engine)
    return LLAMA_CPP if eng.family == LLAMA_CPP else eng.id


_CACHE: dict[tuple[str, int, int, int], list[UserCorrection]] = {}


def stored_corrections(path: Path | None = None) -> list[UserCorrection]:
    """Every correction in the store (empty when there is none).

    Raises:
        DataFileError: the store exists but is not readable as rigplan's calibration.
    """
    path = path or store_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return []
    key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if key not in _CACHE:
        doc = read_store(path)
        _CACHE.clear()
        _CACHE[key] = [_correction(e, str(path), i) for i, e in enumerate(doc["entries"])]
    return _CACHE[key]


def load_user_profile(engine: str, gpu_ids: list[str]) -> UserCorrection | None:
    """The user's correction for this engine on these GPUs, or None.

    Raises:
        DataFileError: the stored calibration is corrupt (the message says how to reset it).
    """
    try:
        key = engine_key(engine)
    except RigplanError:
        return None
    for c in stored_corrections():
        if c.engine == key and set(gpu_ids) <= set(c.gpus):
            return c
    return None


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row.get(k)
        for k in ("engine", "rig", "model", "quant", "kind", "prompt_tokens", "output_tokens", "batch", "tokens_per_s")
    )


def reset() -> bool:
    """Delete the stored calibration; True if there was one."""
    path = store_path()
    with locked(path.parent):
        if path.exists():
            path.unlink()
            return True
    return False


def show() -> list[dict[str, Any]]:
    """The stored corrections, for ``rigplan calibrate --show``."""
    path = store_path()
    if not path.exists():
        return []
    doc = read_store(path)
    stored_corrections(path)  # validates every entry
    return [
        {
            k: e.get(k)
            for k in (
                "engine",
                "gpus",
                "decode_factor",
                "prefill_factor",
                "decode_spread",
                "prefill_spread",
                "fitted_on",
            )
        }
        | {"rows": len(e.get("rows", []))}
        for e in doc["entries"]
    ]
