"""Versioned SQLite stores in the state directory: the migration ledger, the daemon's history.

One way to open them (WAL, a 30 s busy timeout, autocommit so that every write goes through an
explicit `transaction`) and one way to migrate them forward by `PRAGMA user_version`, one
statement at a time: `executescript()` would commit the open transaction, so a migration that
fails half-way would leave a half-migrated file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NewerSchemaError", "open_versioned", "transaction"]


class NewerSchemaError(RuntimeError):
    """The file was written by a newer aep-bridge (its schema version is above ours)."""


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (`BEGIN IMMEDIATE`), rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def open_versioned(
    path: Path, migrations: Mapping[int, str], *, check_same_thread: bool = True
) -> sqlite3.Connection:
    """Open (creating) `path` and migrate it to the highest version in `migrations`.

    Each version is a `;`-separated script applied in its own transaction with the new
    `user_version`. The connection is closed again when opening or migrating fails.

    Raises:
        NewerSchemaError: the file's version is above what `migrations` knows.
        sqlite3.DatabaseError: the file is not a SQLite database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    latest = max(migrations)
    db = sqlite3.connect(
        path, timeout=30, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with transaction(db):
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > latest:
                raise NewerSchemaError(
                    f"{path} was written by a newer aep-bridge (schema {version} > {latest})"
                )
        for target in range(version + 1, latest + 1):
            with transaction(db):
                for statement in migrations[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")
    except BaseException:
        db.close()
        raise
    return db
