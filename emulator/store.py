"""The emulator's state: one SQLite database (WAL) in the state directory, shared by processes.

Every Platform resource is a JSON document keyed by (kind, org, sandbox, id); org and sandbox
isolate tenants exactly as the gateway headers do. Work that must survive the process that
accepted it (delayed landings, scheduled runs) waits in the `pending` table. The schema carries
`PRAGMA user_version` and migrates forward on open.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DB_NAME", "SCHEMA_VERSION", "Pending", "Scope", "Store", "Tx"]

DB_NAME = "emulator.sqlite3"
SCHEMA_VERSION = 1
GLOBAL: tuple[str, str] = ("", "")

Scope = tuple[str, str]
"""(x-gw-ims-org-id, x-sandbox-name); ("", "") for org-agnostic things like specs."""

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE resources (
        kind TEXT NOT NULL, org TEXT NOT NULL, sandbox TEXT NOT NULL, id TEXT NOT NULL,
        body TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (kind, org, sandbox, id));
    CREATE INDEX resources_id ON resources (kind, id);
    CREATE TABLE clients (client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL);
    CREATE TABLE tokens (token TEXT PRIMARY KEY, client_id TEXT NOT NULL, expires_ms INTEGER NOT NULL);
    CREATE TABLE pending (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, due_ms INTEGER NOT NULL,
        org TEXT NOT NULL, sandbox TEXT NOT NULL, payload TEXT NOT NULL);
    CREATE TABLE faults (id INTEGER PRIMARY KEY AUTOINCREMENT, spec TEXT NOT NULL,
        remaining INTEGER NOT NULL);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
}


@dataclass(frozen=True)
class Pending:
    """One unit of deferred work (a landing or a run) and when it is due."""

    id: int
    kind: str
    due_ms: int
    scope: Scope
    payload: dict[str, Any]


class Tx:
    """Reads and writes inside one SQLite transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    # -- resources -------------------------------------------------------------------------
    def get(self, kind: str, scope: Scope, rid: str) -> dict[str, Any] | None:
        """The stored document, or None."""
        row = self._c.execute(
            "SELECT body FROM resources WHERE kind=? AND org=? AND sandbox=? AND id=?",
            (kind, scope[0], scope[1], rid),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, scope: Scope, rid: str, body: dict[str, Any]) -> None:
        """Insert or replace a document, keeping its insertion order on replace."""
        seq = self._c.execute(
            "SELECT seq FROM resources WHERE kind=? AND org=? AND sandbox=? AND id=?",
            (kind, scope[0], scope[1], rid),
        ).fetchone()
        order = seq[0] if seq else self.next_counter("seq")
        self._c.execute(
            "INSERT OR REPLACE INTO resources (kind, org, sandbox, id, body, seq) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, scope[0], scope[1], rid, json.dumps(body), order),
        )

    def delete(self, kind: str, scope: Scope, rid: str) -> bool:
        """Remove a document; True if it existed."""
        cur = self._c.execute(
            "DELETE FROM resources WHERE kind=? AND org=? AND sandbox=? AND id=?",
            (kind, scope[0], scope[1], rid),
        )
        return cur.rowcount > 0

    def items(self, kind: str, scope: Scope) -> list[dict[str, Any]]:
        """All documents of a kind in a scope, oldest first."""
        rows = self._c.execute(
            "SELECT body FROM resources WHERE kind=? AND org=? AND sandbox=? ORDER BY seq",
            (kind, scope[0], scope[1]),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def find_any(self, kind: str, rid: str) -> tuple[Scope, dict[str, Any]] | None:
        """A document by id in whatever scope holds it (streaming inlets carry no org header)."""
        row = self._c.execute(
            "SELECT org, sandbox, body FROM resources WHERE kind=? AND id=?", (kind, rid)
        ).fetchone()
        return ((row[0], row[1]), json.loads(row[2])) if row else None

    def dump(self) -> list[tuple[str, str, str, str, dict[str, Any]]]:
        """Every resource as (kind, org, sandbox, id, body)."""
        rows = self._c.execute(
            "SELECT kind, org, sandbox, id, body FROM resources ORDER BY kind, seq"
        ).fetchall()
        return [(k, o, s, i, json.loads(b)) for k, o, s, i, b in rows]

    def next_counter(self, name: str) -> int:
        """A monotonically increasing integer per name (ordering, sequence numbers)."""
        self._c.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return int(
            self._c.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]
        )

    # -- IMS -------------------------------------------------------------------------------
    def put_client(self, client_id: str, client_secret: str) -> None:
        """Register (or re-key) an OAuth client."""
        self._c.execute(
            "INSERT OR REPLACE INTO clients (client_id, client_secret) VALUES (?, ?)",
            (client_id, client_secret),
        )

    def client_secret(self, client_id: str) -> str | None:
        """The registered secret of a client, or None."""
        row = self._c.execute(
            "SELECT client_secret FROM clients WHERE client_id=?", (client_id,)
        ).fetchone()
        return row[0] if row else None

    def client_ids(self) -> list[str]:
        """Registered client ids."""
        return [r[0] for r in self._c.execute("SELECT client_id FROM clients ORDER BY client_id")]

    def put_token(self, token: str, client_id: str, expires_ms: int) -> None:
        """Store an issued access token."""
        self._c.execute(
            "INSERT INTO tokens (token, client_id, expires_ms) VALUES (?, ?, ?)",
            (token, client_id, expires_ms),
        )

    def token(self, token: str) -> tuple[str, int] | None:
        """(client_id, expires_ms) of a token, or None."""
        row = self._c.execute(
            "SELECT client_id, expires_ms FROM tokens WHERE token=?", (token,)
        ).fetchone()
        return (row[0], int(row[1])) if row else None

    # -- pending work ----------------------------------------------------------------------
    def add_pending(self, kind: str, due_ms: int, scope: Scope, payload: dict[str, Any]) -> int:
        """Queue deferred work; returns its id."""
        cur = self._c.execute(
            "INSERT INTO pending (kind, due_ms, org, sandbox, payload) VALUES (?, ?, ?, ?, ?)",
            (kind, due_ms, scope[0], scope[1], json.dumps(payload)),
        )
        return int(cur.lastrowid or 0)

    def due_pending(self, now_ms: int, limit: int = 500) -> list[Pending]:
        """Deferred work due at `now_ms`, oldest first."""
        rows = self._c.execute(
            "SELECT id, kind, due_ms, org, sandbox, payload FROM pending WHERE due_ms <= ? "
            "ORDER BY due_ms, id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [Pending(r[0], r[1], r[2], (r[3], r[4]), json.loads(r[5])) for r in rows]

    def all_pending(self) -> list[Pending]:
        """Every queued unit of work."""
        rows = self._c.execute(
            "SELECT id, kind, due_ms, org, sandbox, payload FROM pending ORDER BY due_ms, id"
        ).fetchall()
        return [Pending(r[0], r[1], r[2], (r[3], r[4]), json.loads(r[5])) for r in rows]

    def remove_pending(self, pid: int) -> bool:
        """Mark work done; False if another process took it first."""
        return self._c.execute("DELETE FROM pending WHERE id=?", (pid,)).rowcount > 0

    # -- faults ----------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any], times: int) -> int:
        """Register an injected fault; returns its id."""
        cur = self._c.execute(
            "INSERT INTO faults (spec, remaining) VALUES (?, ?)", (json.dumps(spec), times)
        )
        return int(cur.lastrowid or 0)

    def faults(self) -> list[tuple[int, dict[str, Any], int]]:
        """(id, spec, remaining) of every fault still armed."""
        rows = self._c.execute(
            "SELECT id, spec, remaining FROM faults WHERE remaining > 0 ORDER BY id"
        ).fetchall()
        return [(r[0], json.loads(r[1]), r[2]) for r in rows]

    def consume_fault(self, fid: int) -> bool:
        """Use one shot of a fault; False if it was already spent."""
        return (
            self._c.execute(
                "UPDATE faults SET remaining = remaining - 1 WHERE id=? AND remaining > 0", (fid,)
            ).rowcount
            > 0
        )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._c.execute("DELETE FROM faults")


class Store:
    """The SQLite database of one state directory; one connection per thread."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.path = state_dir / DB_NAME
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # check_same_thread=False only so that close() can close every thread's connection.
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for target in sorted(_MIGRATIONS):
                if target > version:
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection opened by any thread (call once the server has stopped)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
