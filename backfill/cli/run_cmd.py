"""`aep-migrate run`: the whole migration (validate, ship, ingest, reconcile), resumable."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from backfill.cli._app import ConfigOption, app

if TYPE_CHECKING:
    from backfill.migrate import MigrateResult

__all__ = ["run_command"]

_out = Console()
_err = Console(stderr=True)


def _files_table(result: MigrateResult) -> Table:
    table = Table(title="files", title_justify="left")
    for name in ("file", "kind", "read", "valid", "rejected", "excluded", "shipped", "step"):
        table.add_column(name, justify="right" if name not in ("file", "kind", "step") else "left")
    for f in result.files:
        c = f.counts
        shipped = str(c.get("shipped", ""))
        if "nested" in c:  # line items travel inside their bills; orphans are set aside
            shipped = f"{c['nested']} in bills, {c.get('orphans', 0)} orphans"
        table.add_row(
            Path(f.path).name,
            f.kind,
            *(str(c.get(k, "")) for k in ("rows_read", "valid", "rejected", "excluded")),
            shipped,
            f.step.value + (" (earlier run)" if f.skipped else ""),
        )
    return table


def _runs_table(result: MigrateResult) -> Table:
    table = Table(title="AEP runs", title_justify="left")
    for name in (
        "kind",
        "run",
        "status",
        "shipped",
        "input",
        "written",
        "failed",
        "batches",
        "check",
    ):
        table.add_column(name)
    for r in result.reconciliations:
        table.add_row(
            r.kind,
            r.run_id,
            r.status,
            str(r.rows_shipped),
            str(r.input),
            str(r.output),
            str(r.failed),
            str(len(r.batches)),
            "[green]adds up[/]" if r.ok else "[red]" + "; ".join(r.problems) + "[/]",
        )
    return table


@app.command("run")
def run_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="CSV exports or directories (default: backfill.input_dir, else the bundled samples).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
    config: ConfigOption = None,
) -> None:
    """Migrate: validate the exports, ship the valid rows, run AEP's SFTP dataflow, reconcile.

    Safe to re-run: files are known by their content, and each resumes at the step it reached.
    Exit 0 when every file went through and every count adds up, 1 otherwise.
    """
    from backfill.migrate import migrate
    from config.cli_support import CONFIG_EXIT_CODE, settings_or_exit
    from config.loader import ConfigError

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # aep.http logs one redacted line per request; httpx's own line would repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not verbose:
        # paramiko logs a peer's ordinary disconnect at ERROR; our own errors carry the cause.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    settings = settings_or_exit(config)

    def notify(line: str) -> None:
        if not json_out:
            _err.print(f"[bold]·[/] {line}", highlight=False)

    try:
        result = migrate(settings, inputs=paths or None, notify=notify)
    except ConfigError as exc:
        if json_out:
            _out.print_json(json.dumps({"ok": False, "error": str(exc)}))
        _err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(CONFIG_EXIT_CODE) from None
    except Exception as exc:  # the command never ends in a traceback
        logging.getLogger("backfill.migrate").debug("migration failed", exc_info=True)
        if json_out:  # a script reading --json still gets JSON
            _out.print_json(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        _err.print(f"[red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
        _err.print("Fix the cause and run `aep-migrate run` again: it resumes where it stopped.")
        raise typer.Exit(1) from None
    if json_out:
        _out.print_json(json.dumps(result.asdict()))
    else:
        _out.print(_files_table(result))
        if result.reconciliations:
            _out.print(_runs_table(result))
        for note in result.notes:
            _err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        for problem in result.problems:
            _err.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
        verdict = (
            "[green]migration complete: every count adds up[/]"
            if result.ok
            else (
                "[red]migration incomplete[/]: fix the problems above and run `aep-migrate run` again"
            )
        )
        _out.print(f"{verdict} ({result.seconds:.1f} s)")
    if not result.ok:
        raise typer.Exit(1)
