"""What the web may hand to the core: catalogue ids always; paths and Hugging Face repo ids
only when the server was started with ``--allow-paths`` / ``--allow-network``; uploaded
config.json files by the id :mod:`.uploads` gave them."""

from __future__ import annotations

import importlib.util
import pathlib
import re
from typing import Any

from rigplan import InvalidValueError, UnknownModelError, load_catalog

from . import uploads

# A Hugging Face repo id: "org/name" (huggingface_hub's validate_repo_id, simplified).
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def has_module(name: str) -> bool:
    """Whether an optional part of rigplan (planner, launch, training) is installed."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # its parent package is missing or does not import
        return False


def features() -> dict[str, bool]:
    """Optional parts of rigplan that other work adds; the page hides what is missing."""
    return {
        "plan": has_module("rigplan.planner"),
        "launch": has_module("rigplan.integrations.launch"),
        "training": has_module("rigplan.training.estimate"),
        "training_plan": has_module("rigplan.training.planner"),
    }


class Inputs:
    """What the web may pass to the core: catalogue ids always; paths and repo ids by flag."""

    def __init__(self, *, allow_paths: bool, allow_network: bool) -> None:
        self.allow_paths = allow_paths
        self.allow_network = allow_network

    def model(self, text: str) -> Any:
        """A model argument safe to hand to the core: a catalogue id, an uploaded model's
        :class:`~rigplan.catalog.records.Model`, or (when allowed) a path or repo id.

        Raises:
            UnknownModelError: not a catalogue id, and paths / repo ids are not allowed here.
        """
        from rigplan import resolve_model

        uploaded = uploads.lookup(text)
        if uploaded is not None:
            return uploaded
        try:
            return resolve_model(text, load_catalog()).id
        except UnknownModelError as exc:
            hint = []
            if not self.allow_paths:
                hint.append("local paths need `rigplan serve --allow-paths`")
            if not self.allow_network:
                hint.append("Hugging Face repo ids need `rigplan serve --allow-network`")
            if self.allow_paths or self.allow_network:
                # Only now may the filesystem be looked at, and only to tell a path from a repo id.
                is_path = _exists(text)
                if self.allow_paths and is_path:
                    return text
                if self.allow_network and REPO_ID.match(text) and not is_path:
                    return text
            if hint:
                raise _with_hint(exc, hint) from None
            raise

    def model_name(self, text: str) -> str:
        """The id an answer names the model by (an uploaded model keeps its upload id)."""
        found = self.model(text)
        return found if isinstance(found, str) else text

    def rig(self, text: str) -> str:
        """A rig string; "local" (GPU detection on this machine) only where NVML support exists."""
        if text.strip().lower() == "local" and not has_module("rigplan.integrations.nvml"):
            raise InvalidValueError("rig", "'local' needs GPU detection, which this install lacks")
        return text


def _exists(text: str) -> bool:
    try:
        return pathlib.Path(text).expanduser().exists()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _with_hint(exc: UnknownModelError, hints: list[str]) -> UnknownModelError:
    err = UnknownModelError(exc.name, exc.suggestions)
    err.args = (f"{exc}; {'; '.join(hints)}",)
    return err
