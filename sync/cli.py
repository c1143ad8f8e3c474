"""The `aep-sync` and `aep-smoke` commands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from aep.errors import AEPError
from aep.platform import open_platform
from config.cli_support import CONFIG_EXIT_CODE, settings_or_exit
from config.loader import ConfigError
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


PLATFORM_EXIT_CODE = 3
"""Exit code when the platform could not be reached or refused the credentials."""


@sync_app.command("ping")
def sync_ping(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Open the configured platform, get a token and answer: tenant id and dataflow count.

    Exits 3 when the platform cannot be reached or refuses the credentials.
    """
    settings = settings_or_exit(config)
    started = time.monotonic()
    try:
        with open_platform(settings) as opened:
            client = opened.client
            tenant = client.schemas.tenant_id()
            flows = sum(1 for _ in client.flows.flows.list())
            result = {
                "mode": settings.platform.mode,
                "gateway": opened.base_url,
                "org_id": opened.settings.platform.org_id,
                "sandbox": opened.settings.platform.sandbox,
                "client_id": opened.settings.platform.client_id,
                "tenant_id": tenant,
                "flows": flows,
                "seconds": round(time.monotonic() - started, 3),
            }
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(CONFIG_EXIT_CODE) from None
    except AEPError as exc:
        typer.echo(f"error: platform not reachable: {exc}", err=True)
        typer.echo("next: check platform.* with `aep-sync show-config`", err=True)
        raise typer.Exit(PLATFORM_EXIT_CODE) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"platform ok: {result['mode']} at {result['gateway']}\n"
        f"  org {result['org_id']}, sandbox {result['sandbox']}, client {result['client_id']}\n"
        f"  tenant {result['tenant_id']}, {result['flows']} dataflow(s), {result['seconds']}s"
    )


def main() -> None:
    """Entry point of `aep-sync`."""
    sync_app()


def smoke_main() -> None:
    """Entry point of `aep-smoke`."""
    smoke_app()


# plan, apply, run, status (aep-sync) and send (aep-smoke) register themselves on the apps above
from sync import commands as _commands  # noqa: E402, F401
