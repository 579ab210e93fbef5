"""``rigplan serve``: a local web app (JSON API and a page with charts) over the public API.

Needs the ``web`` extra (fastapi, uvicorn); the core never imports this package.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
