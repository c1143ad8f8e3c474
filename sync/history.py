"""The sync history in SQLite (`<state_dir>/sync/history.sqlite`): what the daemon saw and did.

Tables (schema version in `PRAGMA user_version`, migrated forward on open):
- `resources`: resource key -> Platform id, as last created or found (lets a renamed resource
  still be found, so its name is planned as drift instead of a second create);
- `fingerprints`: connection key -> sha256 of the secrets last sent (a GET masks them, so this
  is how a rotated credential is noticed);
- `applies`: one row per apply (started, finished, ok, counts by action, error);
- `runs`: flow runs seen by the watch job (id, flow, status, record counts);
- `alerts`: what the watch job reported (failed runs, disabled or missing flows).

Every write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.sqlite_state import open_versioned, transaction

__all__ = ["SCHEMA_VERSION", "AlertRow", "ApplyRow", "History", "RunRow", "history_path"]

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE resources (key TEXT PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL,
                            updated_at REAL NOT NULL);
    CREATE TABLE fingerprints (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE applies (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL,
                          finished_at REAL, ok INTEGER, counts TEXT, error TEXT, trigger TEXT);
    CREATE TABLE runs (run_id TEXT PRIMARY KEY, flow_key TEXT NOT NULL, flow_id TEXT NOT NULL,
                       status TEXT, input_records INTEGER, output_records INTEGER,
                       failed_records INTEGER, created_at INTEGER, seen_at REAL NOT NULL);
    CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
                         flow_key TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
                         ref TEXT, UNIQUE (kind, ref));
    """,
}


def history_path(state_dir: Path) -> Path:
    """Where the history database lives."""
    return state_dir / "sync" / "history.sqlite"


@dataclass(frozen=True)
class ApplyRow:
    """One recorded apply."""

    id: int
    started_at: float
    finished_at: float | None
    ok: bool | None
    counts: dict[str, int]
    error: str | None
    trigger: str | None


@dataclass(frozen=True)
class RunRow:
    """One flow run the watch job saw."""

    run_id: str
    flow_key: str
    flow_id: str
    status: str | None
    input_records: int | None
    output_records: int | None
    failed_records: int | None
    created_at: int | None
    seen_at: float


@dataclass(frozen=True)
class AlertRow:
    """One alert."""

    id: int
    at: float
    flow_key: str
    kind: str
    message: str
    ref: str | None


def _apply_row(r: Any) -> ApplyRow:
    return ApplyRow(
        id=int(r[0]),
        started_at=float(r[1]),
        finished_at=r[2],
        ok=None if r[3] is None else bool(r[3]),
        counts=json.loads(r[4]) if r[4] else {},
        error=r[5],
        trigger=r[6],
    )


class History:
    """The history database (one connection; use from one thread at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # the daemon's one worker thread uses it; jobs never overlap
        self._db = open_versioned(path, _MIGRATIONS, check_same_thread=False)

    @classmethod
    def open(cls, state_dir: Path) -> History:
        """The history of a state directory."""
        return cls(history_path(state_dir))

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

    # -- resource ids
    def recorded_id(self, key: str) -> str | None:
        """The id last recorded for a resource key."""
        row = self._db.execute("SELECT id FROM resources WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def record_id(self, key: str, kind: str, resource_id: str) -> None:
        """Remember a resource's id."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO resources (key, kind, id, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, id = excluded.id, "
                "updated_at = excluded.updated_at",
                (key, kind, resource_id, time.time()),
            )

    def recorded(self) -> dict[str, tuple[str, str]]:
        """Every recorded resource: key -> (kind, id)."""
        rows = self._db.execute("SELECT key, kind, id FROM resources ORDER BY key").fetchall()
        return {str(k): (str(kind), str(i)) for k, kind, i in rows}

    # -- secret fingerprints
    def fingerprint(self, key: str) -> str | None:
        """The sha256 of the secrets last sent for a base connection."""
        row = self._db.execute("SELECT sha256 FROM fingerprints WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def record_fingerprint(self, key: str, sha256: str) -> None:
        """Remember the fingerprint of the secrets just sent."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO fingerprints (key, sha256, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET sha256 = excluded.sha256, "
                "updated_at = excluded.updated_at",
                (key, sha256, time.time()),
            )

    # -- applies
    def start_apply(self, trigger: str) -> int:
        """Record the start of an apply; returns its id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO applies (started_at, trigger) VALUES (?, ?)", (time.time(), trigger)
            )
            return int(cur.lastrowid or 0)

    def finish_apply(
        self, apply_id: int, *, ok: bool, counts: dict[str, int], error: str | None = None
    ) -> None:
        """Record how an apply ended."""
        with self._tx() as db:
            db.execute(
                "UPDATE applies SET finished_at = ?, ok = ?, counts = ?, error = ? WHERE id = ?",
                (time.time(), int(ok), json.dumps(counts, sort_keys=True), error, apply_id),
            )

    def applies(self, limit: int = 20) -> list[ApplyRow]:
        """The latest applies, newest first."""
        rows = self._db.execute(
            "SELECT id, started_at, finished_at, ok, counts, error, trigger FROM applies "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_apply_row(r) for r in rows]

    def last_successful_apply(self) -> ApplyRow | None:
        """The newest apply that finished ok."""
        row = self._db.execute(
            "SELECT id, started_at, finished_at, ok, counts, error, trigger FROM applies "
            "WHERE ok = 1 ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else _apply_row(row)

    # -- runs
    def record_run(self, run: RunRow) -> bool:
        """Record a run or its new status; True when it was not seen before."""
        with self._tx() as db:
            known = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
            db.execute(
                "INSERT INTO runs (run_id, flow_key, flow_id, status, input_records, "
                "output_records, failed_records, created_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "status = excluded.status, input_records = excluded.input_records, "
                "output_records = excluded.output_records, "
                "failed_records = excluded.failed_records",
                (
                    run.run_id,
                    run.flow_key,
                    run.flow_id,
                    run.status,
                    run.input_records,
                    run.output_records,
                    run.failed_records,
                    run.created_at,
                    run.seen_at,
                ),
            )
            return known is None

    def runs(self, limit: int = 20) -> list[RunRow]:
        """The runs seen, newest first."""
        rows = self._db.execute(
            "SELECT run_id, flow_key, flow_id, status, input_records, output_records, "
            "failed_records, created_at, seen_at FROM runs "
            "ORDER BY COALESCE(created_at, 0) DESC, seen_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [RunRow(*r) for r in rows]

    # -- alerts
    def alert(self, flow_key: str, kind: str, message: str, *, ref: str | None = None) -> bool:
        """Record an alert once per (kind, ref); True when it is new."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO alerts (at, flow_key, kind, message, ref) "
                "VALUES (?, ?, ?, ?, ?)",
                (time.time(), flow_key, kind, message, ref),
            )
            return cur.rowcount == 1

    def alerts(self, limit: int = 20) -> list[AlertRow]:
        """The latest alerts, newest first."""
        rows = self._db.execute(
            "SELECT id, at, flow_key, kind, message, ref FROM alerts ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [AlertRow(*r) for r in rows]

    def summary(self) -> dict[str, Any]:
        """Everything `aep-sync status` shows, as JSON-able data."""
        last = self.last_successful_apply()
        return {
            "history": str(self.path),
            "last_successful_apply": None if last is None else last.finished_at,
            "applies": [a.__dict__ for a in self.applies()],
            "runs": [r.__dict__ for r in self.runs()],
            "alerts": [a.__dict__ for a in self.alerts()],
            "resources": {k: {"kind": v[0], "id": v[1]} for k, v in self.recorded().items()},
        }
