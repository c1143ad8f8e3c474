"""The `aep-emulator` command: `aep-emulator serve --port P --state DIR ...`.

`serve` runs uvicorn in the foreground and exits 0 on SIGTERM or Ctrl-C. The secret of a client
named with `--client` comes from the environment variable AEP_EMULATOR_CLIENT_SECRET only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from emulator.app import create_app
from emulator.config import DEFAULT_CLIENT_ID, DEFAULT_TOKEN_LIFETIME_S, EmulatorConfig

__all__ = ["SECRET_ENV", "main"]

SECRET_ENV = "AEP_EMULATOR_CLIENT_SECRET"


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture, which re-raises SIGTERM after shutdown
    (the process would then die with status 143); `serve` installs handlers that exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


@app.command()
def serve(
    state: Annotated[Path, typer.Option("--state", help="State directory (SQLite, worker lock).")],
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    client: Annotated[
        str | None,
        typer.Option("--client", help=f"OAuth client id; its secret comes from ${SECRET_ENV}."),
    ] = None,
    token_lifetime: Annotated[
        int, typer.Option("--token-lifetime", min=1, help="IMS token lifetime in seconds.")
    ] = DEFAULT_TOKEN_LIFETIME_S,
    clock_scale: Annotated[
        float,
        typer.Option("--clock-scale", min=0.001, help="Schedules run this many times faster."),
    ] = 1.0,
    landing_delay: Annotated[
        float,
        typer.Option("--landing-delay", min=0.0, help="Seconds before streamed records land."),
    ] = 2.0,
    known_hosts: Annotated[
        Path | None,
        typer.Option("--known-hosts", help="known_hosts for SFTP pulls (never auto-add)."),
    ] = None,
    stripe_fixtures: Annotated[
        Path | None,
        typer.Option("--stripe-fixtures", help="Directory of Stripe JSON lines fixtures."),
    ] = None,
    faults: Annotated[
        bool, typer.Option("--faults", help="Enable the fault-injection admin API.")
    ] = False,
) -> None:
    """Serve the emulator until SIGTERM or Ctrl-C (then exit 0)."""
    clients = None
    if client is not None:
        secret = os.environ.get(SECRET_ENV)
        if not secret:
            typer.echo(f"error: --client {client} needs its secret in ${SECRET_ENV}", err=True)
            raise typer.Exit(2)
        clients = {client: secret}
    if stripe_fixtures is not None and not stripe_fixtures.exists():
        typer.echo(f"error: --stripe-fixtures {stripe_fixtures} does not exist", err=True)
        raise typer.Exit(2)
    if known_hosts is not None and not known_hosts.exists():
        # read at every pull, so it may be written later (aep-migrate writes the embedded SFTP
        # server's entry when that server starts); until then pulls fail naming the file
        typer.echo(f"aep-emulator: {known_hosts} does not exist yet; SFTP pulls need it", err=True)
    config = EmulatorConfig(
        state_dir=state,
        clients=clients,
        token_lifetime_s=token_lifetime,
        clock_scale=clock_scale,
        landing_delay_s=landing_delay,
        known_hosts=known_hosts,
        stripe_fixtures=stripe_fixtures,
        faults=faults,
    )
    server = _Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    shown_client = client or DEFAULT_CLIENT_ID
    typer.echo(
        f"aep-emulator: serving on http://{host}:{sock.getsockname()[1]} (state {state}, "
        f"client {shown_client}, faults {'on' if faults else 'off'})"
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    typer.echo("aep-emulator: stopped")


def main() -> None:
    """Entry point of `aep-emulator`."""
    app()
