"""The `aep-migrate` command: one module per sub-command, all registered on one typer app."""

from __future__ import annotations

import gc

from backfill.cli import run_cmd, ship_cmd, validate_cmd  # noqa: F401  (registers the sub-commands)
from backfill.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `aep-migrate` console script."""
    try:
        app()
    finally:
        # the process ends here: spare the interpreter's last cyclic-GC pass over every object
        # typer, rich, pydantic and paramiko made (~50 ms of `aep-migrate ship`); atexit
        # handlers, flushing and module teardown still run
        gc.freeze()
