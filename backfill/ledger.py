"""The run ledger: what each input file of a migration reached, in SQLite in the state directory.

One row per input file, keyed by the file's sha256, so a re-run recognises a file it has seen
even under another path, and a crash at any point resumes at the step the file reached. Every
transition is one SQLite transaction. The schema carries a version (`PRAGMA user_version`) and
migrates forward.

Steps form a closed, ordered set: a file is `validated`, then `shipped`, then `ingested` (the
SFTP dataflow ran over it), then `reconciled`; or `failed` at one of them (with the reason).

Beside the files, the fingerprint of the SFTP pull credential last sent to AEP (schema 2): AEP
masks it in a GET, so this is how a rotated credential is noticed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from config.sqlite_state import open_versioned, transaction

__all__ = ["Ledger", "LedgerEntry", "LedgerLocked", "Step"]

SCHEMA_VERSION = 2


class Step(StrEnum):
    """How far a file got. Ordered: a file never goes back to an earlier step."""

    VALIDATED = "validated"
    SHIPPED = "shipped"
    INGESTED = "ingested"
    RECONCILED = "reconciled"
    FAILED = "failed"


_ORDER = {Step.VALIDATED: 1, Step.SHIPPED: 2, Step.INGESTED: 3, Step.RECONCILED: 4}

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE files (
        sha256        TEXT PRIMARY KEY,
        input_path    TEXT NOT NULL,
        kind          TEXT NOT NULL,
        step          TEXT NOT NULL,
        failed_step   TEXT,
        reason        TEXT,
        counts        TEXT NOT NULL DEFAULT '{}',
        details       TEXT NOT NULL DEFAULT '{}',
        updated_ms    INTEGER NOT NULL
    );
    CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256        TEXT NOT NULL,
        step          TEXT NOT NULL,
        at_ms         INTEGER NOT NULL,
        note          TEXT
    );
    """,
    2: """
    CREATE TABLE credentials_sent (
        key           TEXT PRIMARY KEY,
        sha256        TEXT NOT NULL,
        updated_ms    INTEGER NOT NULL
    );
    """,
}


@dataclass
class LedgerEntry:
    """One input file's record in the ledger."""

    sha256: str
    input_path: str
    kind: str
    step: Step
    failed_step: Step | None = None
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def reached(self, step: Step) -> bool:
        """Whether the file has completed `step` (a failed file has completed the steps before)."""
        if self.step is Step.FAILED:
            return self.failed_step is not None and _ORDER[step] < _ORDER[self.failed_step]
        return _ORDER[self.step] >= _ORDER[step]


class LedgerLocked(Exception):
    """Another migration holds the ledger: two at once would ship and run the same files."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(
            f"another aep-migrate run (pid {holder or 'unknown'}) is using {path.parent}; "
            "wait for it to finish, then run `aep-migrate run` again"
        )
        self.path = path
        self.holder = holder


class Ledger:
    """The migration ledger in `<state_dir>/ledger.sqlite`.

    Args:
        path: the database file.
        exclusive: hold `<path>.lock` (an `flock` the kernel drops when the process dies) for
            as long as the ledger is open, so one migration at a time acts on a state directory.

    Raises:
        LedgerLocked: `exclusive` and another process holds the lock.
    """

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock_fd = _lock(path.with_name(path.name + ".lock")) if exclusive else None
        try:
            self._db = open_versioned(path, _MIGRATIONS)
        except BaseException:
            self._unlock()
            raise

    @classmethod
    def in_state_dir(cls, state_dir: Path, *, exclusive: bool = False) -> Ledger:
        """The ledger of a state directory (see `exclusive`)."""
        return cls(state_dir / "ledger.sqlite", exclusive=exclusive)

    def close(self) -> None:
        """Close the database and release the lock."""
        self._db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

    def get(self, sha256: str) -> LedgerEntry | None:
        """The entry of a file, by the sha256 of its content."""
        row = self._db.execute(
            "SELECT sha256, input_path, kind, step, failed_step, reason, counts, details "
            "FROM files WHERE sha256 = ?",
            (sha256,),
        ).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[LedgerEntry]:
        """Every file the ledger knows, oldest first."""
        rows = self._db.execute(
            "SELECT sha256, input_path, kind, step, failed_step, reason, counts, details "
            "FROM files ORDER BY updated_ms, sha256"
        ).fetchall()
        return [_entry(r) for r in rows]

    def record(
        self,
        sha256: str,
        step: Step,
        *,
        input_path: str,
        kind: str,
        counts: dict[str, int] | None = None,
        details: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        """Record that a file completed `step`, merging counts and details into what is known.

        Raises:
            ValueError: when `step` would move the file back to an earlier step.
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT sha256, input_path, kind, step, failed_step, reason, counts, details "
                "FROM files WHERE sha256 = ?",
                (sha256,),
            ).fetchone()
            old = _entry(row) if row else None
            if (
                old is not None
                and old.step is not Step.FAILED
                and step is not Step.FAILED
                and _ORDER[step] < _ORDER[old.step]
            ):
                raise ValueError(f"{input_path}: cannot go back from {old.step} to {step}")
            merged_counts = {**(old.counts if old else {}), **(counts or {})}
            merged_details = {**(old.details if old else {}), **(details or {})}
            now = int(time.time() * 1000)
            db.execute(
                "INSERT INTO files(sha256, input_path, kind, step, failed_step, reason, counts, "
                "details, updated_ms) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?) "
                "ON CONFLICT(sha256) DO UPDATE SET input_path=excluded.input_path, "
                "kind=excluded.kind, step=excluded.step, failed_step=NULL, reason=NULL, "
                "counts=excluded.counts, details=excluded.details, updated_ms=excluded.updated_ms",
                (
                    sha256,
                    input_path,
                    kind,
                    step.value,
                    json.dumps(merged_counts),
                    json.dumps(merged_details),
                    now,
                ),
            )
            db.execute(
                "INSERT INTO events(sha256, step, at_ms, note) VALUES (?, ?, ?, NULL)",
                (sha256, step.value, now),
            )
        entry = self.get(sha256)
        assert entry is not None
        return entry

    def fail(
        self,
        sha256: str,
        step: Step,
        reason: str,
        *,
        input_path: str,
        kind: str,
        counts: dict[str, int] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record that a file failed at `step`, with the reason; a re-run retries that step.

        Counts and details are merged into what is known, as `record` does.
        """
        now = int(time.time() * 1000)
        with self._tx() as db:
            row = db.execute(
                "SELECT counts, details FROM files WHERE sha256 = ?", (sha256,)
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **(counts or {})}
            merged_details = {**(json.loads(row[1]) if row else {}), **(details or {})}
            db.execute(
                "INSERT INTO files(sha256, input_path, kind, step, failed_step, reason, counts, "
                "details, updated_ms) VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?) "
                "ON CONFLICT(sha256) DO UPDATE "
                "SET step='failed', failed_step=excluded.failed_step, reason=excluded.reason, "
                "counts=excluded.counts, details=excluded.details, updated_ms=excluded.updated_ms",
                (
                    sha256,
                    input_path,
                    kind,
                    step.value,
                    reason,
                    json.dumps(merged),
                    json.dumps(merged_details),
                    now,
                ),
            )
            db.execute(
                "INSERT INTO events(sha256, step, at_ms, note) VALUES (?, 'failed', ?, ?)",
                (sha256, now, f"{step.value}: {reason}"),
            )

    def credential_sent(self, key: str) -> str | None:
        """The fingerprint of the credential last sent to the connection `key`, if any."""
        row = self._db.execute(
            "SELECT sha256 FROM credentials_sent WHERE key = ?", (key,)
        ).fetchone()
        return str(row[0]) if row else None

    def record_credential_sent(self, key: str, sha256: str) -> None:
        """Remember the fingerprint of the credential just sent to the connection `key`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO credentials_sent(key, sha256, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET sha256=excluded.sha256, "
                "updated_ms=excluded.updated_ms",
                (key, sha256, int(time.time() * 1000)),
            )


def _lock(path: Path) -> int:
    """Take an exclusive, non-blocking `flock` on `path`; its descriptor holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise LedgerLocked(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    sha, path, kind, step, failed_step, reason, counts, details = row
    return LedgerEntry(
        sha256=sha,
        input_path=path,
        kind=kind,
        step=Step(step),
        failed_step=Step(failed_step) if failed_step else None,
        reason=reason,
        counts=json.loads(counts),
        details=json.loads(details),
    )
