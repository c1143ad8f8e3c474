"""Runs over several files: duplicates across files, the maximum reject rate, the cut-over, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backfill.cli import app
from tests.backfill.validate.helpers import FIXTURES, run, triples, write

HEADER = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status\n"


def test_duplicates_across_files(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.csv",
        HEADER
        + "ch_1,2026-01-05 10:00:00,1.00,0,usd,true,Paid\nch_2,2026-01-05 10:00:00,2.00,0,usd,true,Paid\n",
    )
    b = write(
        tmp_path,
        "b.csv",
        HEADER
        + "ch_1,2026-01-05 10:00:00,1.00,0,usd,true,Paid\nch_2,2026-01-05 10:00:00,9.00,0,usd,true,Paid\nch_3,2026-01-05 10:00:00,3.00,0,usd,true,Paid\n",
    )
    ra, rb = run([a, b], tmp_path / "out")
    assert (ra.rows_valid, ra.rows_rejected, ra.excluded) == (1, 1, {})
    assert (rb.rows_valid, rb.rows_rejected, rb.excluded) == (1, 1, {"exact_duplicate": 1})
    assert triples(ra.rejects_path) == [("3", "id", "duplicate_id")]  # type: ignore[arg-type]
    msg = pl.read_csv(rb.rejects_path, infer_schema=False)["message"][0]  # type: ignore[arg-type]
    assert "a.csv:3" in msg and "b.csv:3" in msg
    assert pl.read_csv(ra.valid_path, infer_schema=False)["id"].to_list() == ["ch_1"]  # type: ignore[arg-type]


def test_files_sharing_a_name_are_told_apart_by_their_path(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    row = "ch_1,2026-01-05 10:00:00,{},0,usd,true,Paid\n"
    a = write(tmp_path / "x", "p.csv", HEADER + row.format("1.00"))
    b = write(tmp_path / "y", "p.csv", HEADER + row.format("2.00"))
    ra, rb = run([a, b], tmp_path / "out")
    assert ra.rows_rejected == rb.rows_rejected == 1  # same id, different content
    msg = pl.read_csv(ra.rejects_path, infer_schema=False)["message"][0]  # type: ignore[arg-type]
    assert f"{a}:2" in msg and f"{b}:2" in msg


@pytest.mark.parametrize("fast_lane", [True, False])
def test_a_composite_identity_with_blank_parts_is_still_checked_for_duplicates(
    tmp_path: Path, fast_lane: bool
) -> None:
    """A points entry without programId / pointsCategory made its whole identity blank, so
    its copies were shipped twice and its conflicting versions all shipped."""
    header = (
        "eventLogId,user_id,eventName,ledgerEntryType,points,pointsCategory,programId,"
        "ledgerCreatedDate,transactionNumber,storeCode,tillCode\n"
    )
    entry = "L{},50001,PointsRedemption,DEBIT,{},,,2025-07-02 09:00:00.0,,MG,MG01\n"
    rows = entry.format(1, 50) + entry.format(1, 50) + entry.format(2, 50) + entry.format(2, 70)
    p = write(tmp_path, "points.csv", header + rows)
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert (res.rows_valid, res.excluded, res.rejected_by_rule) == (
        1,
        {"exact_duplicate": 1},
        {"duplicate_id": 2},
    )
    rejects = pl.read_csv(res.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    assert rejects["line"].to_list() == ["4", "5"]
    # the identity as compared: parts shown, blanks too, the case-insensitive enum in lower case
    assert rejects["value"].to_list() == ["L2 |  |  | debit"] * 2


@pytest.mark.parametrize("fast_lane", [True, False])
def test_rows_that_would_ship_the_same_are_copies_not_a_conflict(
    tmp_path: Path, fast_lane: bool
) -> None:
    """Copies are judged on the values shipped: a status or currency written in another case
    (mapped or lower-cased the same) is an exact duplicate, not two duplicate_id rejects."""
    rows = (
        "ch_1,2026-01-05 10:00:00,1.00,0,usd,true,Paid\n"
        "ch_1,2026-01-05 10:00:00,1.00,0,USD,true,paid\n"
        "ch_2,2026-01-05 10:00:00,1.00,0,usd,true,Paid\n"
        "ch_2,2026-01-05 10:00:00,2.00,0,usd,true,Paid\n"
    )
    p = write(tmp_path, "p.csv", HEADER + rows)
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert (res.rows_valid, res.excluded) == (1, {"exact_duplicate": 1})
    assert triples(res.rejects_path) == [  # type: ignore[arg-type]
        ("4", "id", "duplicate_id"),
        ("5", "id", "duplicate_id"),
    ]


@pytest.mark.parametrize("fast_lane", [True, False])
def test_composite_identities_compare_as_shipped(tmp_path: Path, fast_lane: bool) -> None:
    """`07` and `7` (an int), `CREDIT` and `credit`, `Main` and `MAIN` (enums read in any
    case) are the same points entry, shipped the same: copies, not two entries with one
    identity, and the enum is shipped as the contract spells it."""
    header = (
        "eventLogId,user_id,eventName,ledgerEntryType,points,pointsCategory,programId,"
        "ledgerCreatedDate,transactionNumber,storeCode,tillCode\n"
    )
    entry = "{},50001,TransactionAdd,{},10,{},{},2025-07-01 10:00:05.0,MG-1,MG,MG01\n"
    rows = (
        entry.format("L2", "CREDIT", "Main", "7")
        + entry.format("L2", "credit", "Main", "7")
        + entry.format("L3", "CREDIT", "Main", "7")
        + entry.format("L3", "Credit", "MAIN", "07")
    )
    p = write(tmp_path, "points.csv", header + rows)
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert (res.rows_valid, res.excluded, res.rows_rejected) == (2, {"exact_duplicate": 2}, 0)
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert valid.select("entry_type", "points_category", "program_id").unique().rows() == [
        ("CREDIT", "Main", "7")
    ]


def test_reject_rate_above_maximum_withholds_the_valid_file(tmp_path: Path) -> None:
    # A German-locale export read as plain: every amount is rejected.
    rows = "".join(f'ch_{i},2026-01-05 10:00:00,"1{i},50",0,eur,true,Paid\n' for i in range(5))
    p = write(tmp_path, "de.csv", HEADER + rows)
    (res,) = run([p], tmp_path / "out", max_reject_rate=0.05)
    assert res.status == "failed" and res.valid_path is None and not res.ok
    assert "above the maximum" in res.message
    assert not (tmp_path / "out" / "de.valid.csv").exists()
    (ok,) = run([p], tmp_path / "out2", max_reject_rate=0.05, locale="de")
    assert ok.status == "validated" and ok.rows_valid == 5


def test_rows_after_cutover_are_excluded(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "p.csv",
        HEADER
        + "ch_1,2026-01-05 10:00:00,1.00,0,usd,true,Paid\nch_2,2026-03-05 10:00:00,1.00,0,usd,true,Paid\n",
    )
    (res,) = run([p], tmp_path / "out", cutover=datetime(2026, 2, 1, tzinfo=UTC))
    assert res.excluded == {"after_cutover": 1} and res.rows_valid == 1


def test_cli_validate_ok_json(tmp_path: Path) -> None:
    path = FIXTURES / "capillary_transactions" / "transactions_clean.csv"
    r = CliRunner().invoke(app, ["validate", str(path), "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    (f,) = data["files"]
    assert (
        f["kind"] == "capillary_transactions"
        and f["rows_valid"] == 3
        and f["status"] == "validated"
    )
    assert (tmp_path / "validate-report.json").exists() and (
        tmp_path / "transactions_clean.report.json"
    ).exists()


def test_cli_ends_an_unexpected_failure_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (counts that do not add up, an error from polars on an input nobody foresaw)
    stops the command with exit 1 and says the run's outputs are not to be shipped."""
    import backfill.validate as validate_pkg
    from backfill.validate import InvariantError

    def broken(*args: object, **kwargs: object) -> None:
        raise InvariantError("p.csv: rows read 2 != valid 1 + rejected 0 + excluded 0")

    monkeypatch.setattr(validate_pkg, "validate_files", broken)
    path = FIXTURES / "stripe_payments" / "all_columns_clean.csv"
    r = CliRunner().invoke(app, ["validate", str(path), "--out", str(tmp_path)])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)  # not the InvariantError
    out = " ".join(r.output.split())
    assert "validation stopped: InvariantError: p.csv: rows read 2" in out
    assert "should be shipped" in out and "Traceback" not in out


def test_cli_table_says_which_contract_and_why(tmp_path: Path) -> None:
    path = FIXTURES / "stripe_payments" / "all_columns_clean.csv"
    r = CliRunner().invoke(
        app, ["validate", str(path), "--out", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    assert "contract stripe_payments" in r.output and "era all_columns" in r.output
    assert "validation summary" in r.output


def test_cli_exit_1_without_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", "foo,bar\n1,2\n")
    r = CliRunner().invoke(
        app,
        ["validate", str(bad), str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 1
    assert ("Traceback" not in r.output and r.exception is None) or isinstance(
        r.exception, SystemExit
    )
    out = " ".join(r.output.split())
    assert "bad.csv" in out and "no contract fits" in out and "missing.csv: no such file" in out


@pytest.mark.parametrize("fast_lane", [True, False])
def test_warnings_are_listed_for_shipped_rows_only(tmp_path: Path, fast_lane: bool) -> None:
    """A copy excluded as exact_duplicate, or versions rejected as duplicate_id, used to keep
    their warnings (listed and counted) though nothing of them is shipped."""
    header = (
        "user_id,first_name,last_name,email,mobile,customer_external_id,registered_on,"
        "loyalty_points,lifetime_points,auto_update_time_loyalty\n"
    )
    # lifetime points below the current balance: a warning on each of these rows
    copy = "50001,Ravi,Shah,a@example.com,,,2023-11-02 08:15:00,10,5,1751364000\n"
    tie = "50002,Ravi,Shah,b@example.com,,,2023-11-02 08:15:00,{},5,1751364000\n"
    a = write(tmp_path, "a.csv", header + copy + tie.format(10))
    b = write(tmp_path, "b.csv", header + copy + tie.format(11))
    ra, rb = run([a, b], tmp_path / "out", fast_lane=fast_lane, kind="capillary_customers")
    assert (rb.excluded, ra.rejected_by_rule, rb.rejected_by_rule) == (
        {"exact_duplicate": 1},
        {"duplicate_id": 1},
        {"duplicate_id": 1},
    )
    assert triples(ra.warnings_path) == [("2", "lifetime_points", "lifetime_ge_current_points")]  # type: ignore[arg-type]
    assert triples(rb.warnings_path) == []  # type: ignore[arg-type]
    assert (ra.warnings_by_rule, rb.warnings_by_rule) == ({"lifetime_ge_current_points": 1}, {})
