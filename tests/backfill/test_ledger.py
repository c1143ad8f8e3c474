"""The migration ledger: steps move forward only, survive a reopen, failures are retried."""

from __future__ import annotations

import os
import sqlite3

import pytest

from backfill.ledger import Ledger, Step


def test_steps_persist_across_reopen_and_merge_counts(tmp_path):
    with Ledger.in_state_dir(tmp_path) as ledger:
        ledger.record(
            "aa",
            Step.VALIDATED,
            input_path="a.csv",
            kind="stripe_payments",
            counts={"rows_read": 10, "valid": 8},
        )
        ledger.record(
            "aa",
            Step.SHIPPED,
            input_path="a.csv",
            kind="stripe_payments",
            counts={"shipped": 8},
            details={"remote": "/landing/a.csv"},
        )
    with Ledger.in_state_dir(tmp_path) as ledger:
        entry = ledger.get("aa")
        assert entry is not None
        assert entry.step is Step.SHIPPED
        assert entry.counts == {"rows_read": 10, "valid": 8, "shipped": 8}
        assert entry.details == {"remote": "/landing/a.csv"}
        assert entry.reached(Step.VALIDATED) and entry.reached(Step.SHIPPED)
        assert not entry.reached(Step.INGESTED)


def test_a_step_never_goes_back(tmp_path):
    with Ledger.in_state_dir(tmp_path) as ledger:
        ledger.record("bb", Step.INGESTED, input_path="b.csv", kind="k")
        with pytest.raises(ValueError, match="cannot go back"):
            ledger.record("bb", Step.VALIDATED, input_path="b.csv", kind="k")


def test_failure_keeps_what_was_reached_and_a_rerun_retries(tmp_path):
    with Ledger.in_state_dir(tmp_path) as ledger:
        ledger.record("cc", Step.VALIDATED, input_path="c.csv", kind="k")
        ledger.fail("cc", Step.SHIPPED, "connection refused", input_path="c.csv", kind="k")
        entry = ledger.get("cc")
        assert entry is not None and entry.step is Step.FAILED
        assert entry.reason == "connection refused"
        assert entry.reached(Step.VALIDATED) and not entry.reached(Step.SHIPPED)
        ledger.record("cc", Step.SHIPPED, input_path="c.csv", kind="k")
        entry = ledger.get("cc")
        assert entry is not None and entry.step is Step.SHIPPED and entry.reason is None


def test_schema_version_is_recorded_and_newer_is_refused(tmp_path):
    Ledger.in_state_dir(tmp_path).close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer aep-bridge"):
        Ledger.in_state_dir(tmp_path)


def test_failure_merges_details_into_what_is_known(tmp_path):
    with Ledger.in_state_dir(tmp_path) as ledger:
        ledger.record("dd", Step.SHIPPED, input_path="d.csv", kind="k", details={"remote": "/x"})
        ledger.fail(
            "dd",
            Step.INGESTED,
            "run failed",
            input_path="d.csv",
            kind="k",
            details={"failed_run_ids": ["r1"]},
        )
        entry = ledger.get("dd")
        assert entry is not None and entry.failed_step is Step.INGESTED
        assert entry.details == {"remote": "/x", "failed_run_ids": ["r1"]}


def test_a_version_1_ledger_migrates_forward_and_keeps_credential_fingerprints(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite")  # as the first release wrote it
    db.executescript(
        "CREATE TABLE files (sha256 TEXT PRIMARY KEY, input_path TEXT NOT NULL, kind TEXT NOT NULL,"
        " step TEXT NOT NULL, failed_step TEXT, reason TEXT, counts TEXT NOT NULL DEFAULT '{}',"
        " details TEXT NOT NULL DEFAULT '{}', updated_ms INTEGER NOT NULL);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL,"
        " step TEXT NOT NULL, at_ms INTEGER NOT NULL, note TEXT);"
        "INSERT INTO files VALUES ('ee', 'e.csv', 'k', 'shipped', NULL, NULL, '{}', '{}', 1);"
        "PRAGMA user_version=1;"
    )
    db.close()
    with Ledger.in_state_dir(tmp_path) as ledger:
        entry = ledger.get("ee")
        assert entry is not None and entry.step is Step.SHIPPED
        assert ledger.credential_sent("sftp") is None
        ledger.record_credential_sent("sftp", "f1")
        ledger.record_credential_sent("sftp", "f2")
    with Ledger.in_state_dir(tmp_path) as ledger:
        assert ledger.credential_sent("sftp") == "f2"


def test_one_migration_at_a_time_per_state_dir(tmp_path):
    from backfill.ledger import LedgerLocked

    with Ledger.in_state_dir(tmp_path, exclusive=True):
        with pytest.raises(LedgerLocked) as info:
            Ledger.in_state_dir(tmp_path, exclusive=True)
        assert str(os.getpid()) in str(info.value) and "aep-migrate" in str(info.value)
        Ledger.in_state_dir(tmp_path).close()  # a reader is not kept out
    with Ledger.in_state_dir(tmp_path, exclusive=True):  # released on close
        pass
