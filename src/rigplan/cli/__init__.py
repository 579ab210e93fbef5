"""The ``rigplan`` command: a thin layer over the public API.

Errors become exit codes here and only here: a :class:`~rigplan.errors.RigplanError` prints
one line and exits 2; ``estimate`` exits 1 when the model does not fit.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer

from .. import RigplanError
from .ranges import BoundedGroup
from .safety import fail, pipe_closed, quiet_exit_on_closed_pipe

app = typer.Typer(
    name="rigplan",
    help="Plan, check and launch GPU rigs for running, fine-tuning and training LLMs.\n\n"
    "Example: rigplan estimate llama-3-70b --rig '2x rtx-4090'",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=BoundedGroup,
)

# Commands register themselves on ``app`` when their module is imported.
from . import catalog_cmds, estimate_cmds  # noqa: E402,F401

for _optional in ("plan_cmds", "capacity_cmd", "device_cmds", "calibrate_cmds", "train_cmds", "serve_cmd"):
    try:
        __import__(f"{__name__}.{_optional}")
    except ModuleNotFoundError as exc:  # a command module that is not written yet
        if exc.name != f"{__name__}.{_optional}":
            raise


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    print(f"rigplan: warning: {message}", file=sys.stderr)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"rigplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print rigplan's version and exit."),
    ] = False,
) -> None:
    """Plan, check and launch GPU rigs for running, fine-tuning and training LLMs.

    Example: rigplan estimate llama-3-70b --rig '2x rtx-4090'
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rigplan`` script: every failure the user can cause is one line."""
    warnings.showwarning = _show_warning  # one line, not a source excerpt
    try:
        app(args=argv, prog_name="rigplan")  # usage errors: click prints them and exits 2
    except RigplanError as exc:
        fail(str(exc))
    except RecursionError:  # a pathological input that slipped past the depth checks
        fail("input nested too deeply to read")
    except SystemExit as exc:
        if pipe_closed():
            quiet_exit_on_closed_pipe()
        raise exc from None
    except BrokenPipeError:
        quiet_exit_on_closed_pipe()
