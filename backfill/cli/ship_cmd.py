"""`aep-migrate ship`, `trust-host` and `sftp-server` (issue 5).

The only module of shipping that talks to the terminal: a rich progress bar (bytes, rate,
ETA) and a summary table, or `--json`; errors as one line naming the next step, never a
traceback. Exit codes: 0 all delivered, 1 a file failed or the server was refused/unreachable,
2 configuration or usage problem, 3 another `aep-migrate ship` is running with the same state
directory (its resume journal is locked).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from backfill.cli._app import ConfigOption, app

__all__ = ["STATE_BUSY_EXIT_CODE", "sftp_server_command", "ship_command", "trust_host_command"]

STATE_BUSY_EXIT_CODE = 3

_err = Console(stderr=True)
_out = Console()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=_err, show_path=False, show_time=False)],
        force=True,
    )
    # paramiko reports dropped sockets at ERROR level; ours says what happened and retries
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _summary(result: Any) -> Table:
    table = Table(title=f"ship run {result.run_id} → {result.remote_dir}")
    for col in ("file", "status", "size", "sha256", "remote", "attempts", "note"):
        table.add_column(col, overflow="fold")
    for f in result.files:
        note = "see below" if f.error else ""
        if not note and f.resumed_from:
            note = f"resumed at {_human(f.resumed_from)}"
        if not note and f.renamed_by == "rename-unique":
            note = "final name taken and no posix-rename: fresh name"
        style = {"shipped": "green", "already-there": "cyan", "failed": "red"}[f.status]
        table.add_row(
            Path(f.source).name,
            f"[{style}]{f.status}[/]",
            _human(f.size),
            (f.sha256 or "")[:12],
            f.remote_path or "",
            str(f.attempts),
            note,
        )
    return table


@app.command("ship")
def ship_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILES_OR_DIR...", help="Files, or directories whose files are shipped."
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Remote directory (default: sftp.remote_root)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    connections: Annotated[
        int | None,
        typer.Option(
            help="At most this many parallel connections (default: sftp.connections); fewer "
            "when the round trip is short enough for one (see docs/ship.md).",
            min=1,
        ),
    ] = None,
    verify: Annotated[
        str | None, typer.Option(help="sha256 or size (default: sftp.verify).")
    ] = None,
    gzip: Annotated[
        bool | None, typer.Option("--gzip/--no-gzip", help="Compress on the way.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    config: ConfigOption = None,
) -> None:
    """Ship files to the SFTP landing zone: temporary name, verified, atomic rename, manifest.

    With sftp.port = 0 (the embedded default) the embedded SFTP server runs in the state
    directory for the duration of the command.
    """
    from backfill.ship import (
        ShipError,
        StateBusy,
        expand_inputs,
        options_from_settings,
        ship_configured,
    )
    from config.cli_support import settings_or_exit

    _setup_logging(verbose)
    settings = settings_or_exit(config)
    s = settings.sftp
    if verify not in (None, "sha256", "size"):
        raise _fail(f"--verify must be sha256 or size, not {verify!r}", 2)
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise _fail(f"no such file or directory: {', '.join(missing)}", 2)
    paths = expand_inputs(files)
    if not paths:
        raise _fail("nothing to ship: the directories given hold no files", 2)
    options = options_from_settings(
        s,
        remote_dir=to,
        connections=connections,
        verify=verify,  # type: ignore[arg-type]
        gzip=gzip,
    )

    sizes: dict[str, int] = {}
    positions: dict[str, int] = {}
    lock = threading.Lock()
    original = {p.name: p.stat().st_size for p in paths if p.is_file()}
    progress = Progress(
        TextColumn("[bold]shipping"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
        disable=json_out,
    )
    task = progress.add_task("ship", total=sum(original.values()))

    def on_progress(name: str, pos: int, size: int) -> None:
        with lock:
            sizes[name] = size
            positions[name] = pos
            seen_sources = {n.removesuffix(".gz") for n in sizes}
            total = sum(sizes.values()) + sum(
                v for k, v in original.items() if k not in seen_sources
            )
            progress.update(task, total=total, completed=sum(positions.values()))

    try:
        with progress:
            result = ship_configured(paths, settings, options=options, progress=on_progress)
    except StateBusy as exc:
        raise _fail(str(exc), STATE_BUSY_EXIT_CODE) from None
    except ShipError as exc:
        raise _fail(str(exc)) from None
    if json_out:
        _out.print_json(json.dumps(result.asdict()))
    else:
        _err.print(_summary(result))
        for f in result.files:
            if f.error:
                _err.print(
                    f"[red]failed:[/] {f.source}: {f.error}", highlight=False, soft_wrap=True
                )
        shipped = [f for f in result.files if f.status == "shipped"]
        _err.print(
            f"{len(shipped)} shipped ({_human(result.bytes_shipped)}), "
            f"{sum(f.status == 'already-there' for f in result.files)} already there, "
            f"{sum(f.status == 'failed' for f in result.files)} failed in "
            f"{result.seconds:.1f} s over {result.connections} connection(s); "
            f"manifest: {result.manifest_path or 'not written'}",
            highlight=False,
        )
    if not result.ok:
        raise typer.Exit(1)


def _parse_target(target: str, default_port: int) -> tuple[str, int]:
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest.removeprefix(":")
    elif target.count(":") == 1:
        host, _, port = target.partition(":")
    else:
        host, port = target, ""
    if not host:
        raise ValueError("empty host")
    return host, int(port) if port else default_port


@app.command("trust-host")
def trust_host_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="Server to pin.")],
    known_hosts: Annotated[
        Path | None,
        typer.Option(help="known_hosts file to write (default: sftp.known_hosts)."),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Pin without asking (after checking the fingerprint)."),
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a different key pinned for this host.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Show a server's host key fingerprint and pin it in known_hosts only when asked."""
    from backfill.ship import ShipError, fetch_host_key, pin_host_key
    from backfill.ship.hostkeys import fingerprint, known_keys
    from config.cli_support import settings_or_exit

    _setup_logging(False)
    settings = settings_or_exit(config)
    kh = known_hosts or settings.sftp.known_hosts
    if kh is None:
        raise _fail("no known_hosts file: pass --known-hosts or set sftp.known_hosts", 2)
    default_port = settings.sftp.port if settings.sftp.port else 22
    try:
        host, port = _parse_target(target, default_port)
    except ValueError:
        raise _fail(f"bad HOST[:PORT]: {target!r}", 2) from None
    try:
        offered = fetch_host_key(host, port, timeout_s=settings.sftp.timeout_s)
        pinned = known_keys(kh, host, port)
    except ShipError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"{host}:{port} offers {offered.key_type} {offered.fingerprint}", highlight=False)
    for key in pinned:
        same = key.asbytes() == offered.key.asbytes()
        _out.print(
            f"  {kh} pins {key.get_name()} {fingerprint(key)}"
            + (" (same key)" if same else " [bold red](DIFFERENT)[/]"),
            highlight=False,
        )
    if pinned and all(k.asbytes() == offered.key.asbytes() for k in pinned):
        _out.print("already trusted; nothing to do")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _fail("not pinned: compare the fingerprint, then re-run with --yes")
        if not typer.confirm("Pin this key?", default=False):
            raise typer.Exit(1)
    try:
        result = pin_host_key(kh, offered, replace=replace)
    except ShipError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"{result.action}: {result.line.split(' ', 1)[0]} in {kh}", highlight=False)


@app.command("sftp-server")
def sftp_server_command(
    port: Annotated[
        int | None, typer.Option(help="Port (default: sftp.port; 0 picks a free one).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the embedded SFTP server (loopback, key auth, rooted in <state_dir>/sftp).

    Runs until interrupted (Ctrl-C or SIGTERM); prints the port, client key and known_hosts.
    """
    from backfill.sftpd import EmbeddedSftpServer, ensure_embedded_credentials, write_known_hosts
    from backfill.ship import ShipError
    from config.cli_support import settings_or_exit

    _setup_logging(True)
    settings = settings_or_exit(config)
    try:
        creds = ensure_embedded_credentials(settings.state_dir)
        server = EmbeddedSftpServer(
            creds.root,
            creds.host_key,
            creds.authorized_keys,
            host=settings.sftp.host,
            port=settings.sftp.port if port is None else port,
        )
        bound = server.start()
    except (ShipError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    assert server.host_key is not None
    write_known_hosts(creds.known_hosts, server.host, bound, server.host_key)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _out.print(
        f"embedded SFTP server on {server.host}:{bound}, root {creds.root}\n"
        f"  client key:  {creds.client_key}\n"
        f"  known_hosts: {creds.known_hosts}\n"
        f"  try: sftp -i {creds.client_key} -P {bound} "
        f"-o UserKnownHostsFile={creds.known_hosts} {settings.sftp.user}@{server.host}",
        highlight=False,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        _out.print("stopped")
