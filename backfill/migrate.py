"""The migration, end to end: validate -> ship -> ingest -> reconcile, resumable by the ledger.

When a run has Capillary bills and their line items to ship, each bills file goes out as JSON
lines with its line items nested (`backfill.nest`), through the kind's JSON flow; the line-item
files ride along with it (their rows are in the bills' records) and are not shipped themselves.

`migrate` first finishes what an earlier run left (files shipped but not ingested, runs not
reconciled), then takes new files through every step. A file is known by the sha256 of its
content, so re-running over the same exports ships and ingests nothing twice.

In the embedded default (`sftp.port = 0`, `platform.mode = "embedded"`) it starts the embedded
SFTP server and the emulator in the state directory; the emulator pulls from that server with
its own RSA key, as AEP pulls from a landing zone with the credential of its SFTP base connection.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aep.client import PlatformClient
from aep.errors import AEPError
from aep.flows import Run
from aep.platform import check_platform, open_platform
from backfill.contracts.loader import ContractLoadError, load_contracts
from backfill.contracts.model import Contract
from backfill.ingest import (
    Dataflow,
    IngestError,
    PullSource,
    auth_fingerprint,
    ensure_dataflow,
    run_dataflow,
    wait_for_run,
)
from backfill.ledger import Ledger, LedgerEntry, Step
from backfill.nest import LINE_ITEMS, TRANSACTIONS, NestedBills, NestError, nest_bills
from backfill.reconcile import RunReconciliation, reconcile_run
from backfill.sftpd import embedded_server, ensure_embedded_credentials, is_embedded
from backfill.ship import ConnectSpec, FileMeta, ShipError, options_from_settings, ship
from backfill.targets import SHIPPED_MAPPINGS, TargetError, target_for, with_line_items
from backfill.validate import ValidateOptions, validate_files
from backfill.validate.result import FileResult as ValidatedFile
from config.keys import pem_text
from config.loader import ConfigError
from config.settings import Settings

__all__ = ["SAMPLES_DIR", "FileOutcome", "MigrateResult", "migrate"]

logger = logging.getLogger("backfill.migrate")

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "config" / "samples"
"""The bundled sample exports, migrated when no `backfill.input_dir` is configured."""

Notify = Callable[[str], None]


@dataclass
class FileOutcome:
    """Where one input file stands after this run."""

    path: str
    sha256: str
    kind: str
    step: Step
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    skipped: bool = False
    """True when the ledger said an earlier run had already taken it this far."""


@dataclass
class MigrateResult:
    """What a migration run did and whether every count adds up."""

    files: list[FileOutcome] = field(default_factory=list)
    dataflows: dict[str, Dataflow] = field(default_factory=dict)
    reconciliations: list[RunReconciliation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Worth knowing but not a problem: a failed run retried, an export given twice taken once."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every file reconciled: validated, shipped, ingested and its counts add up."""
        return (
            not self.problems
            and all(r.ok for r in self.reconciliations)
            and all(f.step is Step.RECONCILED for f in self.files)
        )

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form (what `aep-migrate run --json` prints)."""
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "kind": f.kind,
                    "step": f.step.value,
                    "counts": f.counts,
                    "reason": f.reason,
                    "skipped": f.skipped,
                }
                for f in self.files
            ],
            "dataflows": {k: d.asdict() for k, d in self.dataflows.items()},
            "reconciliations": [r.asdict() for r in self.reconciliations],
            "problems": self.problems,
            "notes": self.notes,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_VALIDATOR_OUTPUTS = (
    ".valid.csv",
    ".rejects.csv",
    ".warnings.csv",
    ".excluded.csv",
    ".orphans.csv",
)
"""What the validator (and nesting) writes: never an export, so never taken from a folder."""


def _csv_inputs(paths: Sequence[Path]) -> list[Path]:
    """The exports: files named as given, and every CSV directly in a folder.

    Not `backfill.ship.expand_inputs`: its folder rule is for the validator's output (only the
    `*.valid.csv` when there is one), which here would drop the raw exports beside such a file.
    """
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.extend([p] if p.name.lower().endswith(".csv") else [])
            continue
        out.extend(
            sorted(
                c
                for c in p.iterdir()
                if c.is_file()
                and not c.name.startswith(".")
                and c.name.lower().endswith(".csv")
                and not c.name.lower().endswith(_VALIDATOR_OUTPUTS)
            )
        )
    return out


def _outputs_dir(root: Path) -> Path:
    """A directory of its own for this invocation's validator outputs under `root`.

    Exports are often named alike from one month to the next: another invocation must not
    overwrite a valid file not yet shipped, nor a rejects file (the record of the rows set aside).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return root / f"{stamp}-{secrets.token_hex(3)}"


def _by_content(path: Path | None, sha: str, suffix: str) -> Path | None:
    """Rename a validator output `<stem><suffix>` to `<stem>.<sha12><suffix>`.

    The valid file's name becomes its name in the landing zone, so two exports named alike
    must land under two names: a second `customers.valid.csv` would replace the first there,
    before AEP has read it if its run failed or the process was killed.
    """
    if path is None or not path.name.endswith(suffix) or not path.exists():
        return path
    unique = path.with_name(f"{path.name.removesuffix(suffix)}.{sha[:12]}{suffix}")
    os.replace(path, unique)
    return unique


def _validated_counts(r: ValidatedFile) -> dict[str, int]:
    return {
        "rows_read": r.rows_read,
        "valid": r.rows_valid,
        "rejected": r.rows_rejected,
        "excluded": r.rows_excluded,
    }


@dataclass
class _Landing:
    """Where files are shipped to, and how AEP pulls them from there."""

    spec: ConnectSpec
    pull: PullSource
    known_hosts_for_platform: Path | None


def _pull_from_settings(settings: Settings) -> PullSource:
    """AEP's view of a configured landing zone: `aep_pull`, each unset field from `sftp`."""
    p = settings.aep_pull
    s = settings.sftp
    key = p.private_key.get_secret_value() if p.private_key else None
    return PullSource(
        host=p.host or s.host,
        port=p.port or s.port,
        username=p.username or s.user,
        folder_path=p.folder_path or s.remote_root,
        password=p.password.get_secret_value() if p.password else None,
        private_key_pem=pem_text(key) if key else None,
        passphrase=p.passphrase.get_secret_value() if p.passphrase else None,
    )


@contextmanager
def _landing(settings: Settings) -> Iterator[_Landing]:
    if not is_embedded(settings.sftp):
        spec = ConnectSpec.from_settings(settings.sftp)
        yield _Landing(spec, _pull_from_settings(settings), settings.sftp.known_hosts)
        return
    state = Path(settings.state_dir)
    # AEP (here the emulator) logs in with its own RSA key, which the embedded server
    # generates and authorises beside the uploader's, as a real landing zone would let it
    pull_key = ensure_embedded_credentials(state).aep_pull_key
    with embedded_server(state, settings.sftp) as (_server, spec):
        pull = PullSource(
            host=spec.host,
            port=spec.port,
            username=spec.user,
            folder_path=settings.sftp.remote_root,
            private_key_pem=pull_key.read_text(),
        )
        yield _Landing(spec, pull, spec.known_hosts)


def migrate(
    settings: Settings,
    *,
    inputs: Sequence[Path] | None = None,
    emulator_options: dict[str, Any] | None = None,
    notify: Notify | None = None,
) -> MigrateResult:
    """Run the migration over `inputs` (default: `backfill.input_dir`, else the bundled samples).

    Args:
        emulator_options: extra options of the embedded emulator (tests: clock scale, delays).
        notify: called with one line per stage, for the command's progress output.

    Returns:
        Per file its step and counts, the dataflows, one reconciliation per run, problems.

    Raises:
        ConfigError: the platform configuration, the landing zone, the state directory,
            `backfill.contracts_dir` or `backfill.cutover` is unusable (each checked before
            any work).
        LedgerLocked: another migration is using the state directory.
    """
    check_platform(settings)
    started = time.monotonic()
    say = notify or (lambda _msg: None)
    result = MigrateResult()
    roots = list(inputs) if inputs else [settings.backfill.input_dir or SAMPLES_DIR]
    missing = [str(p) for p in roots if not Path(p).exists()]
    if missing:
        result.problems.append(f"no such file or directory: {', '.join(missing)}")
        return result
    paths = _csv_inputs([Path(p) for p in roots])
    if not paths:
        result.problems.append(f"no CSV files in {', '.join(str(p) for p in roots)}")
        return result
    _check_landing(settings)
    contracts = _contracts(settings)
    cutover = _cutover(settings)
    state = Path(settings.state_dir)
    with _open_ledger(state) as ledger:
        by_path = _validate(settings, contracts, cutover, paths, ledger, result, say)
        with ExitStack() as stack:
            landing = stack.enter_context(_landing(settings))
            _ship(settings, ledger, by_path, landing, result, say)
            options = {"known_hosts": landing.known_hosts_for_platform}
            options.update(emulator_options or {})
            platform = stack.enter_context(open_platform(settings, emulator_options=options))
            _ingest(settings, contracts, ledger, platform.client, landing, result, say)
        settled_now = {r.run_id for r in result.reconciliations}
        for f in result.files:
            entry = ledger.get(f.sha256)
            if entry is None:
                continue
            f.step, f.counts, f.reason = entry.step, entry.counts, entry.reason
            # a mismatch is never re-ingested (that would write the records twice), so
            # nothing retries it: every later run reports it again
            if (
                entry.failed_step is Step.RECONCILED
                and entry.details.get("run_id") not in settled_now
            ):
                result.problems.append(
                    f"{f.path}: run {entry.details.get('run_id')} did not reconcile "
                    f"(recorded by an earlier run, never re-ingested): {entry.reason}"
                )
    result.seconds = time.monotonic() - started
    return result


def _open_ledger(state: Path) -> Ledger:
    """The state directory's ledger; an unusable state directory is a configuration problem."""
    try:
        return Ledger.in_state_dir(state, exclusive=True)
    except OSError as exc:
        raise ConfigError(
            "state_dir",
            [f"state_dir: cannot keep the migration ledger under {state}: {exc.strerror or exc}"],
        ) from None
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            "state_dir", [f"state_dir: {state / 'ledger.sqlite'} is not a usable ledger: {exc}"]
        ) from None


def _check_landing(settings: Settings) -> None:
    """Refuse, before any work, a configured landing zone that cannot be used.

    The uploader's side is checked as shipping would check it; AEP's side needs a credential
    of its own (the embedded server makes one).
    """
    if is_embedded(settings.sftp):
        return
    problems: list[str] = []
    try:
        ConnectSpec.from_settings(settings.sftp)
    except ShipError as exc:
        problems.append(str(exc))
    p = settings.aep_pull
    if not (p.password and p.password.get_secret_value()) and not (
        p.private_key and p.private_key.get_secret_value()
    ):
        problems.append(
            "aep_pull.password / aep_pull.private_key: AEP logs in to the landing zone with a "
            "credential of its own; set AEP_BRIDGE_AEP_PULL__PASSWORD or "
            "AEP_BRIDGE_AEP_PULL__PRIVATE_KEY (an RSA key in PEM form)"
        )
    if problems:
        raise ConfigError("sftp / aep_pull", problems)


def _contracts(settings: Settings) -> dict[str, Contract]:
    """The contracts; an unusable `backfill.contracts_dir` is a configuration problem."""
    try:
        return load_contracts(settings.backfill.contracts_dir)
    except ContractLoadError as exc:
        raise ConfigError("backfill.contracts_dir", [f"backfill.contracts_dir: {exc}"]) from None


def _cutover(settings: Settings) -> datetime | None:
    """`backfill.cutover` as an instant, checked before any work."""
    text = settings.backfill.cutover
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        raise ConfigError(
            "backfill.cutover",
            [f"backfill.cutover: {text!r} is not an ISO 8601 instant (e.g. 2024-07-01T00:00:00Z)"],
        ) from None


def _validate(
    settings: Settings,
    contracts: dict[str, Contract],
    cutover: datetime | None,
    paths: list[Path],
    ledger: Ledger,
    result: MigrateResult,
    say: Notify,
) -> dict[str, LedgerEntry]:
    """Validate the files the ledger has not validated; returns ledger entries by sha256."""
    todo: list[Path] = []
    hashes: dict[Path, str] = {}
    entries: dict[str, LedgerEntry] = {}
    first_of: dict[str, Path] = {}
    for path in paths:
        try:
            sha = _sha256(path)
        except OSError as exc:  # one unreadable export must not stop the others
            result.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        if sha in first_of:
            # the ledger knows a file by its content: a second copy validated beside the first
            # would see all its rows as duplicates of the first and replace its valid file
            if path != first_of[sha]:
                result.notes.append(f"{path}: same content as {first_of[sha]}: taken once")
            continue
        first_of[sha] = path
        hashes[path] = sha
        entry = ledger.get(sha)
        # the valid file is only needed until it is shipped: a shipped file is never
        # validated again, even when the validator's outputs were cleaned up since
        if entry is not None and (
            entry.reached(Step.SHIPPED)
            or (
                entry.reached(Step.VALIDATED)
                and Path(entry.details.get("valid_path") or "").is_file()
            )
        ):
            entries[sha] = entry
            result.files.append(
                FileOutcome(str(path), sha, entry.kind, entry.step, entry.counts, skipped=True)
            )
        else:
            todo.append(path)
    if todo:
        b = settings.backfill
        out_dir = _outputs_dir(b.out_dir or Path(settings.state_dir) / "validated")
        say(f"validating {len(todo)} file(s) into {out_dir}")
        run = validate_files(
            todo,
            contracts,
            ValidateOptions(
                out_dir=out_dir,
                encoding=b.encoding,
                account_timezone=b.account_timezone,
                max_reject_rate=b.max_reject_rate,
                cutover=cutover,
            ),
        )
        for r in run.files:
            sha = hashes[r.path]
            kind = r.kind or "unknown"
            if r.ok and r.valid_path is not None:
                r.valid_path = _by_content(r.valid_path, sha, ".valid.csv")
                r.report_path = _by_content(r.report_path, sha, ".report.json")
                entry = ledger.record(
                    sha,
                    Step.VALIDATED,
                    input_path=str(r.path),
                    kind=kind,
                    counts=_validated_counts(r),
                    details={
                        "valid_path": str(r.valid_path),
                        "rejects_path": str(r.rejects_path) if r.rejects_path else None,
                        "report_path": str(r.report_path) if r.report_path else None,
                    },
                )
                entries[sha] = entry
                result.files.append(FileOutcome(str(r.path), sha, kind, entry.step, entry.counts))
            else:
                reason = r.message or f"{r.path}: validation {r.status}"
                ledger.fail(
                    sha,
                    Step.VALIDATED,
                    reason,
                    input_path=str(r.path),
                    kind=kind,
                    counts=_validated_counts(r),
                )
                result.problems.append(reason if str(r.path) in reason else f"{r.path}: {reason}")
                result.files.append(
                    FileOutcome(str(r.path), sha, kind, Step.FAILED, _validated_counts(r), reason)
                )
    return entries


def _ship(
    settings: Settings,
    ledger: Ledger,
    entries: dict[str, LedgerEntry],
    landing: _Landing,
    result: MigrateResult,
    say: Notify,
) -> None:
    """Ship every validated file not shipped yet, into `<remote_root>/<kind>/`.

    Bills and line items to ship together go out nested (see `_nest`): the bills' JSON-lines
    files are shipped, and the line-item files are recorded as shipped within them.
    """
    s = settings.sftp
    pending = [e for e in entries.values() if not e.reached(Step.SHIPPED)]
    pending = _settle_nested_line_items(ledger, pending, entries)
    nesting = _nest(ledger, pending, result, say)
    by_kind: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in pending:
        if nesting is None or entry.sha256 not in nesting.line_items:
            by_kind[entry.kind].append(entry)
    for kind, todo in sorted(by_kind.items()):
        remote_dir = f"{s.remote_root.rstrip('/')}/{kind}"
        local = [_shipped_file(e, nesting) for e in todo]
        say(f"shipping {len(local)} {kind} file(s) to {remote_dir}")
        shipped = ship(
            local,
            landing.spec,
            state_dir=Path(settings.state_dir),
            options=options_from_settings(s, remote_dir=remote_dir),
            meta={
                path: FileMeta(rows=_rows_to_ship(e, nesting), contract=kind)
                for path, e in zip(local, todo, strict=True)
            },
        )
        for entry, f in zip(todo, shipped.files, strict=True):
            if f.status == "failed":
                reason = f.error or "upload failed"
                ledger.fail(
                    entry.sha256, Step.SHIPPED, reason, input_path=entry.input_path, kind=kind
                )
                result.problems.append(f"{entry.input_path}: {reason}")
                continue
            nested = nesting.bills.get(entry.sha256) if nesting else None
            entries[entry.sha256] = ledger.record(
                entry.sha256,
                Step.SHIPPED,
                input_path=entry.input_path,
                kind=kind,
                counts={"shipped": _rows_to_ship(entry, nesting)}
                | ({"line_items_nested": nested.line_items} if nested else {}),
                details={
                    "remote_path": f.remote_path,
                    "remote_dir": remote_dir,
                    "compression": f.compression,
                    "shipped_sha256": f.sha256,
                    "manifest": shipped.manifest_path,
                    "shipped_at": int(time.time()),
                }
                | (
                    {
                        "format": "json",
                        "jsonl_path": str(nested.jsonl_path),
                        "nested_line_items": nesting.recorded if nesting else {},
                    }
                    if nested
                    else {}
                ),
            )
    if nesting is not None:
        _record_nested_line_items(ledger, nesting, entries, result)


@dataclass
class _Nesting:
    """What `_nest` made of this run's bills and line items, by ledger sha256."""

    bills: dict[str, NestedBills]
    """Bills file sha256 -> its JSON-lines file and counts."""
    line_items: dict[str, LedgerEntry]
    """Line-item file sha256 -> its entry (ridden along with the bills, never shipped)."""
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Line-item file sha256 -> the counts and details its entry gets once shipped."""


def _shipped_file(entry: LedgerEntry, nesting: _Nesting | None) -> Path:
    nested = nesting.bills.get(entry.sha256) if nesting else None
    return nested.jsonl_path if nested else Path(entry.details["valid_path"])


def _rows_to_ship(entry: LedgerEntry, nesting: _Nesting | None) -> int:
    nested = nesting.bills.get(entry.sha256) if nesting else None
    return nested.bills if nested else int(entry.counts.get("valid", 0))


def _nest(
    ledger: Ledger, pending: list[LedgerEntry], result: MigrateResult, say: Notify
) -> _Nesting | None:
    """Nest this run's line items into this run's bills, when it has both to ship.

    Line items whose bill is in none of the bills files are set aside (`<name>.orphans.csv`)
    and counted; per line-item file, valid = nested + orphans.

    Returns:
        None when there is nothing to nest (then each kind ships flat, as any other).
    """
    bills = [e for e in pending if e.kind == TRANSACTIONS]
    items = [e for e in pending if e.kind == LINE_ITEMS]
    if not bills or not items:
        return None
    say(f"nesting {len(items)} line-item file(s) into {len(bills)} bills file(s)")
    item_shas = {e.sha256 for e in items}
    # bills an earlier run shipped with these line items (another bills file of that run
    # failed to ship): their line items are nested already, not orphans
    shipped_before = [
        Path(b.details["jsonl_path"])
        for b in ledger.entries()
        if b.kind == TRANSACTIONS
        and b.reached(Step.SHIPPED)
        and item_shas & set(b.details.get("nested_line_items") or {})
        and Path(b.details.get("jsonl_path") or "").is_file()
    ]
    try:
        made = nest_bills(
            [Path(e.details["valid_path"]) for e in bills],
            [Path(e.details["valid_path"]) for e in items],
            shipped_bills=shipped_before,
        )
    except NestError as exc:
        for e in [*bills, *items]:
            ledger.fail(e.sha256, Step.SHIPPED, str(exc), input_path=e.input_path, kind=e.kind)
        result.problems.append(str(exc))
        pending[:] = [e for e in pending if e.kind not in (TRANSACTIONS, LINE_ITEMS)]
        return None
    recorded: dict[str, dict[str, Any]] = {}
    for e in items:
        o = made.line_items[Path(e.details["valid_path"])]
        recorded[e.sha256] = {
            "counts": {"shipped": 0, "nested": o.nested, "orphans": o.orphans},
            "details": {
                "nested_in": TRANSACTIONS,
                "orphans_path": str(o.orphans_path) if o.orphans_path else None,
            },
        }
        if o.orphans:
            result.notes.append(
                f"{e.input_path}: {o.orphans} line item(s) whose bill is in no transactions "
                f"file set aside in {o.orphans_path} (orphan_line_item)"
            )
    return _Nesting(
        bills={e.sha256: made.bills[Path(e.details["valid_path"])] for e in bills},
        line_items={e.sha256: e for e in items},
        recorded=recorded,
    )


def _record_nested_line_items(
    ledger: Ledger, nesting: _Nesting, entries: dict[str, LedgerEntry], result: MigrateResult
) -> None:
    """Record the line-item files as shipped within the bills, once every bills file is.

    If a bills file failed to ship, the line-item files are failed too: the next run nests
    them again with it (counting the bills already shipped as known, see `_nest`), and they
    ride with its run.
    """
    failed = [s for s in nesting.bills if not entries[s].reached(Step.SHIPPED)]
    for sha, e in nesting.line_items.items():
        if failed:
            reason = "not shipped: the bills file its line items are nested in failed to ship"
            ledger.fail(sha, Step.SHIPPED, reason, input_path=e.input_path, kind=e.kind)
            result.problems.append(f"{e.input_path}: {reason}")
            continue
        entries[sha] = _record_ridden(ledger, e, nesting.recorded[sha], entries.values())


def _record_ridden(
    ledger: Ledger,
    e: LedgerEntry,
    recorded: dict[str, Any],
    candidates: Iterable[LedgerEntry],
) -> LedgerEntry:
    """Record a line-item file as shipped within the bills files that list it."""
    bills = [b for b in candidates if e.sha256 in (b.details.get("nested_line_items") or {})]
    # the latest bills shipped: the line items ride with their run (an earlier bills file of
    # theirs has had its own), whose window must not reach back to that one
    latest = (
        max(bills, key=lambda b: int(b.details.get("shipped_at") or 0)).details if bills else {}
    )
    return ledger.record(
        e.sha256,
        Step.SHIPPED,
        input_path=e.input_path,
        kind=e.kind,
        counts=recorded["counts"],
        details={
            **recorded["details"],
            "format": "json",
            "compression": latest.get("compression"),
            "shipped_at": latest.get("shipped_at"),
            "nested_with": [b.sha256 for b in bills],
        },
    )


def _settle_nested_line_items(
    ledger: Ledger, pending: list[LedgerEntry], entries: dict[str, LedgerEntry]
) -> list[LedgerEntry]:
    """Line-item files an interrupted run nested and shipped within bills, recorded now.

    The bills file is recorded first with what each line-item file became; a crash before the
    line-item files were recorded leaves them validated: they are not nested again.
    """
    shipped_bills = {
        e.sha256: e
        for e in ledger.entries()
        if e.kind == TRANSACTIONS and e.reached(Step.SHIPPED) and e.details.get("format") == "json"
    }
    still: list[LedgerEntry] = []
    for e in pending:
        # the latest nesting of the file (ledger entries come oldest first)
        recorded = next(
            (
                b.details["nested_line_items"][e.sha256]
                for b in reversed(list(shipped_bills.values()))
                if e.sha256 in (b.details.get("nested_line_items") or {})
            ),
            None,
        )
        # a line-item file failed at shipping (its bills file did) is nested again instead
        if e.kind == LINE_ITEMS and e.step is not Step.FAILED and recorded is not None:
            entries[e.sha256] = _record_ridden(ledger, e, recorded, shipped_bills.values())
        else:
            still.append(e)
    return still


def _ingest(
    settings: Settings,
    contracts: dict[str, Contract],
    ledger: Ledger,
    client: PlatformClient,
    landing: _Landing,
    result: MigrateResult,
    say: Notify,
) -> None:
    """Run each kind's SFTP dataflow over its shipped files and reconcile the run.

    Files whose run was recorded but not reconciled (a crash, or a run still going) are settled
    first from that run; files whose run failed, or that were never ingested, get a new run.
    """
    prefix = settings.flows.prefix
    todo: dict[str, list[LedgerEntry]] = defaultdict(list)
    open_runs: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    known_runs: dict[str, set[str]] = defaultdict(set)
    recorded_mapping: dict[str, str] = {}
    for e in ledger.entries():
        # line items nested in bills are ingested with them, by the bills' flow
        flow_kind = str(e.details.get("nested_in") or e.kind)
        if "run_id" in e.details:
            known_runs[flow_kind].add(str(e.details["run_id"]))
        # a failed run is settled too: taking it up again would fail the files forever
        known_runs[flow_kind].update(str(r) for r in e.details.get("failed_run_ids") or [])
        if "mapping_set_id" in e.details:
            recorded_mapping[e.kind] = str(e.details["mapping_set_id"])
        if e.step is Step.SHIPPED or (e.step is Step.FAILED and e.failed_step is Step.INGESTED):
            todo[flow_kind].append(e)
        elif e.step is Step.INGESTED:
            open_runs[(flow_kind, str(e.details["run_id"]))].append(e)
    timeout_s, poll_s = settings.smoke.timeout_s, min(settings.smoke.poll_s, 1.0)
    for (kind, run_id), entries in sorted(open_runs.items()):
        say(f"settling run {run_id} of {kind} recorded by an earlier run")
        flow_id = str(entries[0].details["flow_id"])
        try:
            run = wait_for_run(client, run_id, timeout_s=timeout_s, poll_s=poll_s)
            settled = _settle(client, ledger, kind, flow_id, run, entries, result, retry=True)
        except (IngestError, AEPError) as exc:  # this run's problem; the others go on
            result.problems.append(f"{kind}: run {run_id} recorded by an earlier run: {exc}")
            continue
        if not settled:
            todo[kind].extend(entries)
    mappings_dirs: tuple[Path, ...] = (SHIPPED_MAPPINGS,)
    if settings.backfill.contracts_dir is not None:
        mappings_dirs += (settings.backfill.contracts_dir.parent / "mappings",)
    for kind, entries in sorted(todo.items()):
        contract = contracts.get(kind)
        if contract is None:
            result.problems.append(f"{kind}: no contract, cannot ingest {len(entries)} file(s)")
            continue
        remote_root = landing.pull.folder_path if not is_embedded(settings.sftp) else None
        folder = f"{(remote_root or settings.sftp.remote_root).rstrip('/')}/{kind}"
        # AEP reads one compression per source connection: plain and gzip files (sftp.gzip
        # changed between runs) each go through their kind's flow for that compression
        # and nested records (JSON lines) have a flow of their own too
        by_compression: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
        for e in entries:
            fmt = str(e.details.get("format") or "delimited")
            by_compression[(str(e.details.get("compression") or "none"), fmt)].append(e)
        for (compression, fmt), group in sorted(by_compression.items()):
            json_lines = fmt == "json"
            key = kind + (".jsonl" if json_lines else "")
            key += "" if compression == "none" else f".{compression}"
            try:
                credential = auth_fingerprint(landing.pull.auth())
                target = target_for(contract, mappings_dirs=mappings_dirs)
                flow = ensure_dataflow(
                    client,
                    prefix=prefix,
                    target=with_line_items(target) if json_lines else target,
                    pull=landing.pull,
                    folder=folder,
                    compression=None if compression == "none" else compression,
                    recorded_mapping_id=None if json_lines else recorded_mapping.get(kind),
                    credential_changed=ledger.credential_sent(_PULL_CONNECTION) != credential,
                    file_format=fmt,
                )
                ledger.record_credential_sent(_PULL_CONNECTION, credential)
                result.dataflows[key] = flow
                say(f"running dataflow {flow.flow_id} for {key} ({len(group)} file(s))")
                run = run_dataflow(
                    client,
                    flow,
                    known_run_ids=known_runs[kind],
                    timeout_s=timeout_s,
                    poll_s=poll_s,
                    window_start_s=_window_start(group),
                )
            except (IngestError, AEPError, TargetError) as exc:  # this group's; others go on
                for e in group:
                    ledger.fail(
                        e.sha256, Step.INGESTED, str(exc), input_path=e.input_path, kind=e.kind
                    )
                result.problems.append(f"{key}: {exc}")
                continue
            _settle(client, ledger, kind, flow.flow_id, run, group, result, retry=False)


_PULL_CONNECTION = "sftp"
"""The ledger's key for the SFTP base connection every kind's dataflow shares."""

_WINDOW_SLACK_S = 60
"""How far before the first upload an ad-hoc run's window opens (clock differences)."""


def _window_start(entries: list[LedgerEntry]) -> int:
    """Epoch seconds from which an ad-hoc run must read to see every file of `entries`."""
    shipped = [int(e.details.get("shipped_at") or 0) for e in entries]
    earliest = min(shipped, default=0)
    return max(0, earliest - _WINDOW_SLACK_S) if earliest else 0


def _settle(
    client: PlatformClient,
    ledger: Ledger,
    kind: str,
    flow_id: str,
    run: Run,
    entries: list[LedgerEntry],
    result: MigrateResult,
    *,
    retry: bool,
) -> bool:
    """Record a finished run over `entries` and reconcile it.

    A failed run is a problem, or only a note when `retry` says the files get another run now.

    Returns:
        False when the run failed without writing a record (the files need another run); True
        when it succeeded, or wrote records whatever its status says (`partialSuccess`),
        whether or not its counts add up: a mismatch is reported, never re-ingested, since
        that would write the records twice.
    """
    batches = [client.catalog.get_batch(b) for b in run.batch_ids]
    shipped_rows = sum(e.counts.get("shipped", 0) for e in entries)
    rec = reconcile_run(kind, flow_id, run, batches, rows_shipped=shipped_rows)
    wrote = bool(rec.output) or any(b.recordCount for b in batches)
    if (run.status or "").lower() != "success" and not wrote:
        reason = "; ".join(rec.problems)
        for e in entries:
            failed_runs = [*(e.details.get("failed_run_ids") or []), run.id]
            ledger.fail(
                e.sha256,
                Step.INGESTED,
                reason,
                input_path=e.input_path,
                kind=e.kind,
                details={"failed_run_ids": list(dict.fromkeys(failed_runs))},
            )
        if retry:
            result.notes.append(f"{kind}: {reason} (its files get a new run)")
        else:
            result.reconciliations.append(rec)
            result.problems.extend(f"{kind}: {p}" for p in rec.problems)
        return False
    result.reconciliations.append(rec)
    # AEP counts per run, not per file: the run's counts go with every file it read.
    details = {
        "run_id": run.id,
        "flow_id": flow_id,
        "run_rows_shipped": shipped_rows,
        "run_output": rec.output,
        "run_failed": rec.failed,
    }
    for e in entries:
        ledger.record(
            e.sha256, Step.INGESTED, input_path=e.input_path, kind=e.kind, details=details
        )
        if rec.ok:
            ledger.record(e.sha256, Step.RECONCILED, input_path=e.input_path, kind=e.kind)
        else:
            ledger.fail(
                e.sha256,
                Step.RECONCILED,
                "; ".join(rec.problems),
                input_path=e.input_path,
                kind=e.kind,
            )
    if not rec.ok:
        result.problems.extend(f"{kind}: {p}" for p in rec.problems)
    return True
