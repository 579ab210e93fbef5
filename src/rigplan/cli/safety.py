"""The CLI's last line of defence: one-line errors and a quiet exit when the reader goes away.

``rigplan gpus | head -1`` closes the pipe after one line; the next write fails with EPIPE.
Click turns that into exit status 1; a shell tool should instead stop quietly, as if killed by
SIGPIPE (status 141 = 128 + 13), and print nothing on stderr.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

#: Exit status of a process killed by SIGPIPE, as the shell reports it (128 + signal 13).
EXIT_CLOSED_PIPE = 141
#: Exit status of a usage error or bad input (click's convention, kept for rigplan's errors).
EXIT_USAGE = 2


def fail(message: str) -> NoReturn:
    """Print ``rigplan: error: MESSAGE`` on one line and exit with status 2."""
    print(f"rigplan: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def pipe_closed() -> bool:
    """Whether click already met a closed stdout (it wraps the streams when it does)."""
    # typer vendors its own click, so the wrapper is recognised by name.
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def quiet_exit_on_closed_pipe() -> NoReturn:
    """Exit 141 with nothing on stderr: point stdout at /dev/null so the final flush succeeds."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    except (OSError, ValueError):  # no file descriptor behind stdout (a test runner's capture)
        pass
    sys.exit(EXIT_CLOSED_PIPE)


def refuse_flags(given: dict[str, bool], reason: str) -> None:
    """Refuse flags that have no effect here instead of ignoring them silently.

    >>> refuse_flags({"--engine": False}, "has no effect with --show")

    Raises:
        InvalidValueError: naming every given flag and ``reason``.
    """
    from .. import InvalidValueError

    on = [flag for flag, is_given in given.items() if is_given]
    if on:
        verb = "have" if len(on) > 1 else "has"
        raise InvalidValueError(on[0].lstrip("-"), f"{', '.join(on)} {verb} no effect {reason}")
