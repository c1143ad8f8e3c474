"""The `aep-emulator` command (issue 3 fills in `serve`)."""

from __future__ import annotations

import typer

__all__ = ["main"]

app = typer.Typer(
    name="aep-emulator",
    help="A local Adobe Experience Platform, faithful to Adobe's API contracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _app_group() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


def main() -> None:
    """Entry point of `aep-emulator`."""
    app()
