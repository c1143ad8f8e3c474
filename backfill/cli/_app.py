"""The typer app of `aep-migrate` and its global options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConfigOption", "app"]

app = typer.Typer(
    name="aep-migrate",
    help="Validate historical Capillary and Stripe CSV exports, ship them over SFTP to AEP's "
    "landing zone, create the SFTP dataflow and reconcile the counts. Safe to re-run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _app_group() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML configuration file (default: $AEP_BRIDGE_CONFIG, else the shipped config/local.toml).",
        dir_okay=False,
    ),
]


@app.command("show-config")
def show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    from config.cli_support import settings_or_exit
    from config.show import settings_as_json

    typer.echo(settings_as_json(settings_or_exit(config)))
