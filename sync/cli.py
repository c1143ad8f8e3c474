"""The `aep-sync` and `aep-smoke` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config.cli_support import settings_or_exit
from config.show import settings_as_json

__all__ = ["main", "smoke_main"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML configuration file.", dir_okay=False),
]

sync_app = typer.Typer(
    name="aep-sync",
    help="Keep the streaming dataflows (Stripe, Capillary profile + transaction, Customer.io) "
    "existing exactly as configured, never twice, and watch them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@sync_app.callback()
def _sync_app_group() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


smoke_app = typer.Typer(
    name="aep-smoke",
    help="Send one test profile or transaction through a flow's inlet and confirm it landed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@smoke_app.callback()
def _smoke_app_group() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@sync_app.command("show-config")
def sync_show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    typer.echo(settings_as_json(settings_or_exit(config)))


@smoke_app.command("show-config")
def smoke_show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    typer.echo(settings_as_json(settings_or_exit(config)))


def main() -> None:
    """Entry point of `aep-sync`."""
    sync_app()


def smoke_main() -> None:
    """Entry point of `aep-smoke`."""
    smoke_app()
