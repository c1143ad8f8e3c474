"""The sub-commands `aep-sync plan|apply|run|status` and `aep-smoke send` (registered on the apps
of `sync.cli`, which imports this module).

Exit codes: 0 done; 1 not done (apply declined, a run cycle failed, a smoke record that did not
land); 2 configuration problem, and for `plan --expect-no-changes`: changes pending; 3 the
platform failed; 4 a change needs a person (e.g. an auth type or flow spec changed);
5 another daemon (or apply) holds the state directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from aep.errors import AEPError
from aep.platform import OpenPlatform, open_platform
from config.cli_support import CONFIG_EXIT_CODE, settings_or_exit
from config.loader import ConfigError
from config.settings import Settings
from sync.apply import apply
from sync.cli import PLATFORM_EXIT_CODE, ConfigOption, smoke_app, sync_app
from sync.daemon import Daemon, DaemonLock, DaemonLocked
from sync.desired import DesiredState, load_desired
from sync.history import History, history_path
from sync.plan import Plan, SyncError, plan
from sync.smoke import Kind, SmokeConfigError, send_smoke

__all__ = ["CHANGES_PENDING_EXIT_CODE", "LOCKED_EXIT_CODE", "NEEDS_PERSON_EXIT_CODE"]

CHANGES_PENDING_EXIT_CODE = 2
"""`aep-sync plan --expect-no-changes`: something would change."""
NEEDS_PERSON_EXIT_CODE = 4
"""A change the tool must not make on its own (auth type, dataset schema, flow spec)."""
LOCKED_EXIT_CODE = 5
"""`aep-sync run` / `apply`: another daemon or apply holds this state directory."""

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@dataclass
class _Session:
    opened: OpenPlatform
    desired: DesiredState
    settings: Settings


def _fail(message: str, code: int, next_step: str | None = None) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    if next_step:
        typer.echo(f"next: {next_step}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _session(config: Path | None) -> Iterator[_Session]:
    """Settings, desired state and the opened platform; errors become exit codes."""
    settings = settings_or_exit(config)
    try:
        desired = load_desired(settings)
        with open_platform(settings) as opened:
            yield _Session(opened, desired, settings)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(CONFIG_EXIT_CODE) from None
    except SyncError as exc:
        raise _fail(str(exc), NEEDS_PERSON_EXIT_CODE) from None
    except AEPError as exc:
        raise _fail(
            f"platform: {exc}",
            PLATFORM_EXIT_CODE,
            "check platform.* with `aep-sync show-config`, then `aep-sync ping`",
        ) from None


def _existing_history(state_dir: Path) -> History | None:
    """The history if there is one (a plan writes nothing, not even a new database)."""
    return History(history_path(state_dir)) if history_path(state_dir).exists() else None


def _print_plan(result: Plan, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.asdict(), indent=2, default=str))
    else:
        typer.echo("\n".join(result.lines()))


def _logging(verbose: bool) -> None:
    """The daemon's own decisions at INFO; every request too with --verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("sync").setLevel(logging.INFO)


@sync_app.command("plan")
def sync_plan(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    expect_no_changes: Annotated[
        bool,
        typer.Option("--expect-no-changes", help="Exit 2 when anything would change."),
    ] = False,
) -> None:
    """Show what `apply` would create, update or leave alone; writes nothing."""
    with _session(config) as s:
        history = _existing_history(s.settings.state_dir)
        try:
            result = plan(s.opened.client, s.desired, history)
        finally:
            if history is not None:
                history.close()
    _print_plan(result, as_json)
    if expect_no_changes and result.has_changes:
        raise typer.Exit(CHANGES_PENDING_EXIT_CODE)


@sync_app.command("apply")
def sync_apply(
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Make the dataflows exist exactly as configured: shows the plan, asks (default no), acts.

    Without a terminal on stdin it only acts with --yes.
    """
    with _session(config) as s:
        history = _existing_history(s.settings.state_dir)
        try:
            pending = plan(s.opened.client, s.desired, history)
        finally:
            if history is not None:
                history.close()
        if not pending.has_changes:
            if as_json:
                _print_plan(pending, as_json)
            else:
                typer.echo("\n".join(pending.lines(detail=False)))
                typer.echo("Nothing to do.")
            return
        if not as_json:
            typer.echo("\n".join(pending.lines()))
        if not yes:
            if not sys.stdin.isatty():
                raise _fail(
                    "not applied: stdin is not a terminal and --yes was not given",
                    1,
                    "aep-sync apply --yes",
                )
            if not typer.confirm("Apply these changes?", default=False):
                typer.echo("Not applied.")
                raise typer.Exit(1)
        try:
            lock = DaemonLock(s.settings.state_dir).acquire()
        except DaemonLocked as exc:
            raise _fail(str(exc), LOCKED_EXIT_CODE) from None
        try:
            with History.open(s.settings.state_dir) as history:
                done = apply(s.opened.client, s.desired, history, trigger="cli")
        finally:
            lock.release()
    _print_plan(done, as_json) if as_json else typer.echo("\n".join(done.lines(detail=False)))


@sync_app.command("run")
def sync_run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One apply and one watch, then exit.")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option("--every", help="Minutes between applies (default flows.apply_interval_min)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
) -> None:
    """The daemon: apply at start and every N minutes, watch flows, runs and failures.

    Records everything in `<state_dir>/sync/history.sqlite`; stops cleanly on SIGTERM (exit 0).
    """
    _logging(verbose)
    settings = settings_or_exit(config)
    try:
        lock = DaemonLock(settings.state_dir).acquire()
    except DaemonLocked as exc:
        raise _fail(str(exc), LOCKED_EXIT_CODE) from None
    try:
        with _session(config) as s, History.open(settings.state_dir) as history:
            daemon = Daemon(
                s.opened.client,
                s.desired,
                history,
                apply_every_min=every or settings.flows.apply_interval_min,
                watch_every_s=settings.flows.watch_interval_s,
                reload=lambda: load_desired(settings),
            )
            if once:
                cycle = daemon.run_once()
                if cycle.applied is not None:
                    typer.echo("\n".join(cycle.applied.lines(changes_only=True)))
                if cycle.watched is not None:
                    typer.echo("\n".join(cycle.watched.lines()))
                if not cycle.ok:
                    raise _fail(
                        cycle.apply_error or cycle.watch_error or "cycle failed",
                        1,
                        "aep-sync status",
                    )
                return
            daemon.run_forever()
            typer.echo("aep-sync: stopped")
    finally:
        lock.release()


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@sync_app.command("status")
def sync_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Print the daemon's history: applies, last successful apply, runs seen, alerts."""
    settings = settings_or_exit(config)
    history = _existing_history(settings.state_dir)
    if history is None:
        raise _fail(f"no history in {history_path(settings.state_dir)}", 1, "aep-sync run --once")
    with history:
        summary = history.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(f"history: {summary['history']}")
    typer.echo(f"last successful apply: {_ts(summary['last_successful_apply'])}")
    typer.echo("applies (newest first):")
    for a in summary["applies"]:
        state = "ok" if a["ok"] else ("running" if a["ok"] is None else "FAILED")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(a["counts"].items()))
        line = f"  #{a['id']} {_ts(a['started_at'])} {a['trigger']}: {state} ({counts})"
        typer.echo(line + (f" {a['error']}" if a["error"] else ""))
    typer.echo("runs seen (newest first):")
    for r in summary["runs"]:
        typer.echo(
            f"  {r['flow_key']} run {r['run_id']}: {r['status']} "
            f"(in {r['input_records']}, out {r['output_records']}, failed {r['failed_records']})"
        )
    typer.echo("alerts (newest first):")
    for al in summary["alerts"]:
        typer.echo(f"  {_ts(al['at'])} {al['flow_key']} {al['kind']}: {al['message']}")


@smoke_app.command("send")
def smoke_send(
    flow: Annotated[str, typer.Option("--flow", help="The flow key in the flows file.")],
    config: ConfigOption = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Send a profile; confirm by Profile lookup.")
    ] = False,
    transaction: Annotated[
        bool,
        typer.Option("--transaction", help="Send a transaction; confirm by the dataset's batch."),
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds to wait (default smoke.timeout_s).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send one test record through a flow's inlet; exit 0 landed, 1 not landed, 2 config."""
    if profile and transaction:
        raise _fail("--profile and --transaction exclude each other", CONFIG_EXIT_CODE)
    kind: Kind | None = "profile" if profile else "transaction" if transaction else None
    with _session(config) as s:
        history = _existing_history(s.settings.state_dir)
        try:
            result = send_smoke(
                s.opened.client,
                s.desired,
                history,
                flow,
                kind=kind,
                timeout_s=timeout if timeout is not None else s.settings.smoke.timeout_s,
                poll_s=s.settings.smoke.poll_s,
                sync_validation=s.settings.smoke.sync_validation,
                bundles_dir=s.settings.state_dir / "bundles",
            )
        except SmokeConfigError as exc:
            raise _fail(str(exc), CONFIG_EXIT_CODE, "aep-sync plan") from None
        finally:
            if history is not None:
                history.close()
    if as_json:
        typer.echo(json.dumps(result.asdict(), indent=2))
    else:
        typer.echo("\n".join(result.lines()))
    if not result.landed:
        raise typer.Exit(1)
