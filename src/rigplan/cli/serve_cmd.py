"""``rigplan serve``: the local web app (JSON API and the planning page)."""

from __future__ import annotations

import ipaddress
import sys
from typing import Annotated

import typer

from . import app

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, "localhost")."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; keep the default unless others must reach it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    allow_paths: Annotated[
        bool, typer.Option("--allow-paths", help="Let the page name local model files (config.json, .gguf).")
    ] = False,
    allow_network: Annotated[
        bool, typer.Option("--allow-network", help="Let the page name Hugging Face repo ids (fetched).")
    ] = False,
) -> None:
    """Start the web app: a page with ranked rigs and charts, and its JSON API (/openapi.json).

    Listens on 127.0.0.1 only, unless --host says otherwise. Needs the web extra:
    pip install 'rigplan[web]'.

    Example: rigplan serve --port 8000
    """
    try:
        import uvicorn

        from ..web import create_app
    except ModuleNotFoundError as exc:
        from .. import UnsupportedError

        raise UnsupportedError(f"rigplan serve needs {exc.name}: pip install 'rigplan[web]'") from None
    loopback = is_loopback(host)
    if not loopback:
        print(
            f"rigplan: warning: listening on {host}, not loopback: anyone who can reach this machine can use the app",
            file=sys.stderr,
        )
    # Off loopback the page is reached by names we cannot know: answer any Host header.
    # One worker process per core answers the questions not asked before (see web.answers).
    web_app = create_app(
        allow_paths=allow_paths,
        allow_network=allow_network,
        allowed_hosts=None if loopback else ["*"],
        processes=True,
    )
    _check_can_listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"rigplan: serving on http://{shown}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(web_app, host=host, port=port, log_level="warning", server_header=False)


def _check_can_listen(host: str, port: int) -> None:
    """Bind once before starting uvicorn, so a bad address or a busy port is one clear error."""
    import socket

    from .. import InvalidValueError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except (OSError, UnicodeError) as exc:
        raise InvalidValueError(
            "host", f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
