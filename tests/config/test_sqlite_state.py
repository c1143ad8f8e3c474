"""Versioned SQLite stores: migrated forward one transaction per version, newer files refused."""

from __future__ import annotations

import sqlite3

import pytest

from config.sqlite_state import NewerSchemaError, open_versioned

V1 = {1: "CREATE TABLE a (x INTEGER)"}


def test_migrations_apply_in_order_and_record_the_version(tmp_path):
    path = tmp_path / "s.sqlite"
    open_versioned(path, V1).close()
    db = open_versioned(path, {**V1, 2: "CREATE TABLE b (y TEXT); INSERT INTO b VALUES ('z')"})
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT y FROM b").fetchall() == [("z",)]
    db.close()


def test_a_failed_migration_leaves_the_previous_version_whole(tmp_path):
    path = tmp_path / "s.sqlite"
    open_versioned(path, V1).close()
    with pytest.raises(sqlite3.OperationalError):
        open_versioned(path, {**V1, 2: "CREATE TABLE b (y TEXT); INSERT INTO nowhere VALUES (1)"})
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchall() == []
    db.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    open_versioned(path, {**V1, 2: "CREATE TABLE b (y TEXT)"}).close()
    with pytest.raises(NewerSchemaError, match="newer aep-bridge"):
        open_versioned(path, V1)
