"""One error tree for rigplan.

Every error rigplan raises on purpose derives from :class:`RigplanError`; the leaves also
derive from the matching builtin so callers can catch either.  Each message says what was
wrong and what to do next.  The CLI and the web app turn these into exit codes / HTTP
statuses in one place each; anything else escaping is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RigplanError(Exception):
    """Root of every error rigplan raises on purpose."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` choices closest to ``name`` (case-insensitive)."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if not hits:
        hits = [c for c in lowered if name.lower() in c][:n]
    return [lowered[h] for h in hits]


class UnknownNameError(LookupError, RigplanError):
    """A name that is not in a catalogue; suggests the nearest ids."""

    kind = "name"
    list_command = "rigplan --help"

    def __init__(self, name: str, suggestions: Iterable[str] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = f" — did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown {self.kind} {name!r}{hint} (`{self.list_command}` lists all)")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownGPUError(UnknownNameError):
    kind = "GPU"
    list_command = "rigplan gpus"


class UnknownModelError(UnknownNameError):
    kind = "model"
    list_command = "rigplan models"


class UnknownQuantError(UnknownNameError):
    kind = "quant"
    list_command = "rigplan quants"


class UnknownEngineError(UnknownNameError):
    kind = "engine"
    list_command = "rigplan estimate --help"


class InvalidValueError(ValueError, RigplanError):
    """An impossible or out-of-range input value; names the field and why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class RigSyntaxError(InvalidValueError):
    """A rig string that does not follow the rig grammar."""

    def __init__(self, rig: str, message: str) -> None:
        super().__init__("rig", f"cannot read {rig!r}: {message} (e.g. '2x rtx-4090', 'rtx-4090 + 2x rtx-3090')")


class UnsupportedError(ValueError, RigplanError):
    """A combination rigplan refuses to guess (architecture, engine on a GPU, layout)."""


class DataFileError(ValueError, RigplanError):
    """A malformed data or model file; names the file and the field."""

    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = path
        self.field = field
        super().__init__(f"{path}: {field}: {message}")


class CatalogError(DataFileError):
    """A malformed row in a shipped or user catalogue file."""


class DeviceError(RuntimeError, RigplanError):
    """Local GPU detection or measurement failed (no driver, no GPU)."""
