"""Models from files and repos (config.json, model folders, .gguf, Hugging Face ids)."""

from __future__ import annotations

from ..catalog.records import Model


def load_model_source(text: str) -> Model | None:
    """A model from a path or repo id, or None when ``text`` names neither."""
    return None
