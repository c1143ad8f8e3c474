"""`aep-migrate validate`: check CSV exports against their contracts (issue 4).

Prints which contract it picked for each file and why, then a table per file (rows read, valid,
rejected, excluded, time, throughput) and the rejects/warnings by rule (cross-file rules
included, and those not checked with the reason); `--json` prints the run
report instead. Exit 0 when every file validated under its maximum reject rate, 1 otherwise
(unreadable file, header mismatch, reject rate above the maximum). Never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from backfill.cli._app import ConfigOption, app

if TYPE_CHECKING:  # polars and the validator load only when `validate` runs (start-up time)
    from backfill.validate import FileResult, RunResult

__all__ = ["validate"]


def _cutover(text: str | None) -> datetime | None:
    if not text:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"cutover {text!r} needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    return dt


def _render(console: Console, run: RunResult) -> None:
    for f in run.files:
        _render_file(console, f)
    table = Table(title="validation summary", show_lines=False)
    for col in (
        "file",
        "kind",
        "status",
        "read",
        "valid",
        "rejected",
        "excluded",
        "warnings",
        "seconds",
        "rows/s",
    ):
        table.add_column(col, justify="right" if col not in ("file", "kind", "status") else "left")
    for f in run.files:
        d = f.asdict()
        style = {"validated": "green", "failed": "red"}.get(f.status, "red")
        table.add_row(
            f.path.name,
            f.kind or "-",
            f"[{style}]{f.status}[/]",
            str(f.rows_read),
            str(f.rows_valid),
            str(f.rows_rejected),
            str(f.rows_excluded),
            str(sum(f.warnings_by_rule.values())),
            f"{f.seconds:.2f}",
            str(d["rows_per_s"] or "-"),
        )
    console.print(table)
    console.print(f"outputs and validate-report.json in {run.out_dir}")


def _render_file(console: Console, f: FileResult) -> None:
    console.print(f"[bold]{f.path}[/]")
    if f.kind:
        flag = (
            ""
            if f.contract_confirmed
            else " [yellow](contract UNCONFIRMED: headers not checked on a real export)[/]"
        )
        console.print(f"  contract {f.kind}{flag}: {f.why}")
    if f.encoding_note:
        console.print(f"  [yellow]encoding: {f.encoding_note}[/]")
    if f.line_end_note:
        console.print(f"  [yellow]line ends: {f.line_end_note}[/]")
    if f.unknown_columns and f.status != "header":
        console.print(f"  passed through unchanged: {', '.join(f.unknown_columns)}")
    if f.message:
        console.print(f"  [red]{f.message}[/]")
    if f.rejected_by_rule or f.warnings_by_rule or f.excluded:
        t = Table(show_header=True, box=None, pad_edge=False)
        t.add_column("  outcome")
        t.add_column("rule / reason")
        t.add_column("rows", justify="right")
        for rule, n in f.rejected_by_rule.items():
            t.add_row("  [red]rejected[/]", rule, str(n))
        for rule, n in f.warnings_by_rule.items():
            t.add_row("  [yellow]warning[/]", rule, str(n))
        for reason, n in f.excluded.items():
            t.add_row("  excluded", reason, str(n))
        console.print(t)
    for rule, reason in f.references_not_checked.items():
        console.print(f"  [yellow]cross-file rule {rule} not checked[/]: {reason}")
    if f.passes:
        console.print("  passes: " + ", ".join(f"{k} {v:.2f}s" for k, v in f.passes.items()))


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV export files to validate.", show_default=False)
    ],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Contract to use (default: detected from the header)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output directory (default: settings backfill.out_dir, else <state_dir>/validated).",
            file_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding", help="Source encoding (default: detect UTF-8 / Windows-1252 / Latin-1)."
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option("--locale", help="Number locale: plain, en (1,234.56) or de (1.234,56)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check CSV exports against their contracts; write valid rows, rejects and a report."""
    from backfill.contracts import ContractLoadError, load_contracts
    from backfill.validate import ValidateOptions, validate_files
    from config.cli_support import settings_or_exit

    settings = settings_or_exit(config)
    b = settings.backfill
    err = Console(stderr=True)
    if locale not in (None, "plain", "en", "de"):
        err.print(f"[red]--locale must be plain, en or de (got {locale!r})[/]")
        raise typer.Exit(2)
    try:
        contracts = load_contracts(b.contracts_dir)
        cutover = _cutover(b.cutover)
    except (ContractLoadError, ValueError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    out_dir = out or b.out_dir or Path(settings.state_dir) / "validated"
    opts = ValidateOptions(
        out_dir=out_dir,
        kind=kind,
        encoding=encoding or b.encoding,
        account_timezone=b.account_timezone,
        max_reject_rate=b.max_reject_rate,
        cutover=cutover,
        locale=locale,  # type: ignore[arg-type]
    )
    try:
        run = validate_files(paths, contracts, opts)
    except OSError as exc:
        err.print(f"[red]cannot write outputs: {exc}[/]")
        raise typer.Exit(1) from None
    except Exception as exc:  # the command never ends in a traceback
        logging.getLogger("backfill.validate").debug("validation failed", exc_info=True)
        err.print(
            f"[red]validation stopped: {type(exc).__name__}: {exc}[/]\n"
            "This is a bug in the validator, not in the files: nothing in "
            f"{out_dir} from this run should be shipped. Please report it with the input.",
            highlight=False,
        )
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(run.asdict(), indent=2, default=str) + "\n")
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(
                width=140
            )  # piped/captured output: keep the table on one line per file
        _render(console, run)
    if not run.ok:
        raise typer.Exit(1)
