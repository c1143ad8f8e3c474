"""Cross-file rules and newest-wins Capillary duplicates, on hand-written fixtures.

The fixtures in tests/fixtures/csv/references/ and their goldens (line, column, rule) are written
by hand from csv-exports.md §6, not generated from the contracts.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from backfill.cli import app
from backfill.contracts import Contract, load_contracts
from backfill.contracts.model import ReferenceSpec
from backfill.validate import FileResult
from tests.backfill.validate.helpers import FIXTURES, golden, run, triples, write

REFS = FIXTURES / "references"
EMPTY: list[tuple[object, ...]] = []


def _by_name(results: list[FileResult]) -> dict[str, FileResult]:
    return {r.path.name: r for r in results}


def _valid(res: FileResult) -> pl.DataFrame:
    assert res.valid_path is not None
    return pl.read_csv(res.valid_path, infer_schema=False)


def _counts_add_up(res: FileResult) -> None:
    assert res.rows_read == res.rows_valid + res.rows_rejected + res.rows_excluded
    assert _valid(res).height == res.rows_valid
    assert sum(res.rejected_by_rule.values()) == res.rows_rejected
    assert len(triples(res.rejects_path)) == res.rows_rejected  # type: ignore[arg-type]
    assert len(triples(res.warnings_path)) == sum(res.warnings_by_rule.values())  # type: ignore[arg-type]


def test_payment_whose_customer_is_missing_gets_a_warning_on_its_line(tmp_path: Path) -> None:
    got = _by_name(run([REFS / "payments.csv", REFS / "customers.csv"], tmp_path))
    pay = got["payments.csv"]
    assert triples(pay.warnings_path) == golden(REFS / "payments.csv", "warnings")  # type: ignore[arg-type]
    assert triples(pay.warnings_path, ("line", "value")) == [("4", "cus_GONE")]  # type: ignore[arg-type]
    assert pay.warnings_by_rule == {"customer_not_in_customers": 1}
    assert pay.references_checked == ["customer_not_in_customers"]
    assert pay.references_not_checked == {}
    # A warning ships the row: nothing rejected, every row still valid.
    assert (pay.rows_read, pay.rows_valid, pay.rows_rejected) == (4, 4, 0)
    _counts_add_up(pay)
    report = json.loads(pay.report_path.read_text())  # type: ignore[union-attr]
    assert report["warnings_by_rule"] == {"customer_not_in_customers": 1}


def test_refunds_above_the_charge_and_before_it_are_rejected(tmp_path: Path) -> None:
    files = [REFS / "payments.csv", REFS / "customers.csv", REFS / "refunds.csv"]
    ref = _by_name(run(files, tmp_path))["refunds.csv"]
    path = REFS / "refunds.csv"
    assert ref.status == "validated", ref.message
    assert triples(ref.rejects_path) == golden(path, "rejects")  # type: ignore[arg-type]
    assert triples(ref.warnings_path) == golden(path, "warnings")  # type: ignore[arg-type]
    assert triples(ref.excluded_path, ("line", "reason")) == golden(path, "excluded")  # type: ignore[arg-type]
    # 8 records (one spans two lines): 3 rejected, 1 exact copy excluded, 4 valid.
    assert (ref.rows_read, ref.rows_valid, ref.rows_rejected, ref.rows_excluded) == (8, 4, 3, 1)
    assert ref.rejected_by_rule == {"refund_before_charge": 1, "refunds_exceed_charge": 2}
    assert ref.warnings_by_rule == {"refunds_not_amount_refunded": 1}
    _counts_add_up(ref)
    assert ref.reject_rate == pytest.approx(3 / 7, abs=1e-6)


def test_refund_rejects_name_the_other_file_and_the_values(tmp_path: Path) -> None:
    files = [REFS / "payments.csv", REFS / "customers.csv", REFS / "refunds.csv"]
    ref = _by_name(run(files, tmp_path))["refunds.csv"]
    rej = pl.read_csv(ref.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    first = rej.row(0, named=True)
    assert first["value"] == "6.00"  # as written in the export
    assert "payments.csv" in first["message"] and "ch_R1" in first["message"]
    assert "1100 minor units" in first["message"] and "1000 minor units" in first["message"]
    # The raw record, including its quoted newline.
    assert first["raw_line"] == (
        're_1,6.00,usd,2026-03-04 10:00,ch_R1,,requested_by_customer,succeeded,,"First part,\n'
        'second line"'
    )
    before = rej.row(2, named=True)
    assert before["value"] == "2026-03-01 09:00"
    assert "2026-03-02 10:00:00 UTC" in before["message"] and "payments.csv" in before["message"]


def test_valid_refunds_file_keeps_only_rows_that_pass(tmp_path: Path) -> None:
    files = [REFS / "payments.csv", REFS / "customers.csv", REFS / "refunds.csv"]
    ref = _by_name(run(files, tmp_path))["refunds.csv"]
    valid = _valid(ref)
    assert sorted(valid["id"]) == ["re_3", "re_5", "re_6", "re_7"]
    # Still in the destination's units.
    assert valid.filter(pl.col("id") == "re_6")["amount"].item() == "2500"


def test_cross_file_rejects_count_towards_the_maximum_reject_rate(tmp_path: Path) -> None:
    files = [REFS / "payments.csv", REFS / "customers.csv", REFS / "refunds.csv"]
    ref = _by_name(run(files, tmp_path, max_reject_rate=0.2))["refunds.csv"]
    assert ref.status == "failed" and ref.valid_path is None
    assert not (tmp_path / "refunds.valid.csv").exists()
    assert "refunds.csv" in ref.message and "42.9%" in ref.message
    # The warning rules do not run on withheld rows, and the report says so.
    assert "refunds_not_amount_refunded" in ref.references_not_checked
    assert ref.rows_read == ref.rows_valid + ref.rows_rejected + ref.rows_excluded


def test_rules_whose_file_is_not_in_the_run_are_reported_not_checked(tmp_path: Path) -> None:
    got = _by_name(run([REFS / "refunds.csv", REFS / "payments.csv"], tmp_path))
    pay, ref = got["payments.csv"], got["refunds.csv"]
    assert pay.references_not_checked == {
        "customer_not_in_customers": "no stripe_customers file in this run"
    }
    assert pay.references_checked == [] and pay.warnings_by_rule == {}
    assert ref.references_not_checked == {}
    report = json.loads(pay.report_path.read_text())  # type: ignore[union-attr]
    assert report["references_not_checked"] == {
        "customer_not_in_customers": "no stripe_customers file in this run"
    }
    alone = run([REFS / "refunds.csv"], tmp_path / "alone")[0]
    assert set(alone.references_not_checked) == {
        "refund_before_charge",
        "refunds_exceed_charge",
        "refunds_not_amount_refunded",
    }
    assert alone.rows_rejected == 0 and alone.rows_valid == 7


def test_a_target_file_that_failed_is_not_checked_against(tmp_path: Path) -> None:
    # Every customer id is malformed: the file fails its maximum reject rate (valid withheld).
    bad = write(
        tmp_path,
        "customers.csv",
        "id,Email,Name,Created (UTC)\ncust_A1,a@example.com,Ann,2025-01-01 10:00\n",
    )
    got = _by_name(run([REFS / "payments.csv", bad], tmp_path / "out", max_reject_rate=0.5))
    pay = got["payments.csv"]
    assert got["customers.csv"].status == "failed"
    reason = pay.references_not_checked["customer_not_in_customers"]
    assert "customers.csv (failed)" in reason and "withheld" in reason
    assert pay.warnings_by_rule == {} and pay.references_checked == []


def test_a_file_of_unknown_kind_is_named_when_a_target_is_missing(tmp_path: Path) -> None:
    # Not recognisable as a customers export (required `Created (UTC)` missing).
    bad = write(tmp_path, "customers.csv", "id,Email,Name\ncus_A1,a@example.com,Ann\n")
    got = _by_name(run([REFS / "payments.csv", bad], tmp_path / "out"))
    assert got["customers.csv"].status == "header" and got["customers.csv"].kind is None
    assert got["payments.csv"].references_not_checked == {
        "customer_not_in_customers": "no stripe_customers file in this run "
        "(kind unknown, not validated: customers.csv)"
    }


def test_capillary_bill_versions_newest_kept_older_superseded(tmp_path: Path) -> None:
    files = [REFS / "bills_a.csv", REFS / "bills_b.csv", REFS / "line_items.csv"]
    got = _by_name(run(files, tmp_path))
    a, b = got["bills_a.csv"], got["bills_b.csv"]
    for res in (a, b):
        name = REFS / res.path.name
        assert triples(res.rejects_path) == golden(name, "rejects")  # type: ignore[arg-type]
        assert triples(res.excluded_path, ("line", "reason")) == golden(name, "excluded")  # type: ignore[arg-type]
        _counts_add_up(res)
    assert a.excluded == {"superseded": 1} and a.duplicates == {"superseded": 1, "conflicting": 2}
    assert b.excluded == {"exact_duplicate": 1}
    assert _valid(a)["bill_id"].to_list() == ["910002"]
    newest = _valid(b)
    assert newest["bill_id"].to_list() == ["910001"]
    assert newest["bill_amount"].item() == "1100.00"
    # The excluded file names the identity of the superseded line.
    assert triples(a.excluded_path, ("line", "reason", "identity")) == [  # type: ignore[arg-type]
        ("2", "superseded", "910001")
    ]
    # The tie (910003) and the version without a time (910004) stay conflicting.
    msgs = pl.read_csv(a.rejects_path, infer_schema=False)["message"].to_list()  # type: ignore[arg-type]
    assert all("bills_b.csv" in m for m in msgs)


def test_line_items_are_checked_against_the_surviving_bills(tmp_path: Path) -> None:
    files = [REFS / "bills_a.csv", REFS / "bills_b.csv", REFS / "line_items.csv"]
    got = _by_name(run(files, tmp_path))
    items = got["line_items.csv"]
    path = REFS / "line_items.csv"
    assert triples(items.rejects_path) == golden(path, "rejects")  # type: ignore[arg-type]
    assert triples(items.warnings_path) == golden(path, "warnings")  # type: ignore[arg-type]
    # Bill 910001's items add up to its newest bill_amount (1100.00), not the superseded 1180.00.
    assert "line_items_not_bill_amount" not in items.warnings_by_rule
    assert "line_items_not_bill_amount" in items.references_checked
    _counts_add_up(items)
    # No customers file in this run: the bills' customer rule is reported, not passed.
    assert got["bills_a.csv"].references_not_checked == {
        "customer_not_in_profiles": "no capillary_customers file in this run"
    }


def test_line_items_warn_when_they_do_not_add_up_to_the_bill(tmp_path: Path) -> None:
    # Only the older export: bill 910001 is 1180.00 there, its items add up to 1100.00.
    got = _by_name(run([REFS / "bills_a.csv", REFS / "line_items.csv"], tmp_path))
    items = got["line_items.csv"]
    assert triples(items.warnings_path) == [  # type: ignore[arg-type]
        ("2", "line_item_amount", "line_items_not_bill_amount"),
        ("3", "line_item_amount", "line_items_not_bill_amount"),
        ("4", "bill_id", "bill_not_in_transactions"),
        ("5", "parent_line_item_id", "parent_not_in_line_items"),
    ]


def test_cli_lists_rules_not_checked(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        ["validate", str(REFS / "payments.csv"), "--out", str(tmp_path)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert (
        "cross-file rule customer_not_in_customers not checked: no stripe_customers file in this run"
        in out
    )


def test_reference_to_an_unknown_kind_or_column_is_a_contract_error() -> None:
    contracts = load_contracts()
    pay = contracts["stripe_payments"]
    bad = pay.model_copy(
        update={
            "references": (
                ReferenceSpec(
                    id="x",
                    check="exists",
                    target="nope",
                    columns=("customer",),
                    target_columns=("id",),
                    message="m",
                ),
                ReferenceSpec(
                    id="y",
                    check="exists",
                    target="stripe_customers",
                    columns=("customer",),
                    target_columns=("no_such",),
                    message="m",
                ),
            )
        }
    )
    problems = bad.check_targets(contracts)
    assert any("unknown target kind 'nope'" in p for p in problems)
    assert any("has no column 'no_such'" in p for p in problems)


def test_newest_by_must_name_an_int_column() -> None:
    raw = load_contracts()["capillary_transactions"].model_dump()
    raw["newest_by"] = "bill_number"
    with pytest.raises(ValidationError, match="not of type int"):
        Contract.model_validate(raw)
    raw["newest_by"] = "no_such"
    with pytest.raises(ValidationError, match="unknown column 'no_such'"):
        Contract.model_validate(raw)


def test_points_ledger_against_profiles_and_bills(tmp_path: Path) -> None:
    files = [REFS / "members.csv", REFS / "points.csv", REFS / "bills_a.csv"]
    got = _by_name(run(files, tmp_path))
    pts = got["points.csv"]
    # 50002: 0 + 15 != 10 (both its rows); MG-0404 is no bill (910002 is a bill_id: found);
    # 50009 has no profile. 50001: 118 - 50 = 68 as in its profile.
    assert triples(pts.warnings_path) == golden(REFS / "points.csv", "warnings")  # type: ignore[arg-type]
    assert pts.warnings_by_rule == {
        "customer_not_in_profiles": 1,
        "points_not_loyalty_points": 2,
        "transaction_not_in_bills": 1,
    }
    assert pts.rows_valid == 5 and pts.rows_rejected == 0
    bills = got["bills_a.csv"]
    assert "customer_not_in_profiles" in bills.references_checked
    assert "customer_not_in_profiles" not in bills.warnings_by_rule


REFUND_HEADER = "id,Amount,Currency,Created (UTC),Charge ID,PaymentIntent ID,Reason,Status\n"


def test_refunds_of_one_charge_are_summed_across_refund_files(tmp_path: Path) -> None:
    # 6.00 + 5.00 > the 10.00 charge ch_R1, one refund per export: both are rejected, and the
    # second file is left with no valid row (it then has nothing to warn about).
    one = write(
        tmp_path,
        "refunds_jan.csv",
        REFUND_HEADER + "re_1,6.00,usd,2026-03-04 10:00,ch_R1,,,succeeded\n",
    )
    two = write(
        tmp_path,
        "refunds_feb.csv",
        REFUND_HEADER + "re_2,5.00,usd,2026-03-05 09:00,ch_R1,,,succeeded\n",
    )
    got = _by_name(run([REFS / "payments.csv", one, two], tmp_path / "out"))
    for name in ("refunds_jan.csv", "refunds_feb.csv"):
        res = got[name]
        assert triples(res.rejects_path) == [("2", "Amount", "refunds_exceed_charge")]  # type: ignore[arg-type]
        assert (res.rows_read, res.rows_valid, res.rows_rejected) == (1, 0, 1)
        assert "over 2 row(s)" in pl.read_csv(res.rejects_path)["message"].item()  # type: ignore[arg-type]
        assert _valid(res).height == 0
        assert "refunds_not_amount_refunded" in res.references_checked


def test_capillary_member_versions_in_one_file(tmp_path: Path) -> None:
    header = "user_id,email,registered_on,loyalty_points,auto_update_time_loyalty\n"
    members = write(
        tmp_path,
        "members.csv",
        header
        + "50001,ravi@example.com,2023-11-02 08:15:00,50,1751364000\n"
        + "50002,sara@example.com,2023-11-03 09:00:00,10,1751364000\n"
        + "50001,ravi@example.com,2023-11-02 08:15:00,68,1751400000\n",
    )
    (res,) = run([members], tmp_path / "out")
    assert triples(res.excluded_path, ("line", "reason", "identity")) == [  # type: ignore[arg-type]
        ("2", "superseded", "50001")
    ]
    assert res.excluded == {"superseded": 1} and res.rows_rejected == 0
    valid = _valid(res)
    assert valid.filter(pl.col("user_id") == "50001")["loyalty_points"].to_list() == ["68"]


def test_lines_are_found_in_a_windows_1252_source(tmp_path: Path) -> None:
    text = (REFS / "payments.csv").read_text(encoding="utf-8").replace("Course", "Café")
    pay = write(tmp_path, "payments.csv", text, encoding="cp1252")
    got = _by_name(run([pay, REFS / "customers.csv"], tmp_path / "out"))
    res = got["payments.csv"]
    assert res.encoding == "windows-1252"
    assert triples(res.warnings_path) == golden(REFS / "payments.csv", "warnings")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("form", "name"),
    [("cr_line_ends", "refunds.csv"), ("utf16", "refunds.csv"), ("cr_line_ends", "sources.csv")],
)
def test_cross_file_rejects_find_their_lines_in_a_source_read_through_a_copy(
    tmp_path: Path, form: str, name: str
) -> None:
    """A refunds file whose lines end in CR only, or in UTF-16, is read through a copy: the
    cross-file rejects must find their lines and raw text there, as in the plain fixture
    (whatever the file is called: `sources` is also the name of the copies' directory)."""
    text = (REFS / "refunds.csv").read_text(encoding="utf-8")
    data = text.replace("\n", "\r").encode() if form == "cr_line_ends" else text.encode("utf-16")
    p = tmp_path / name
    p.write_bytes(data)
    files = [REFS / "payments.csv", REFS / "customers.csv", p]
    ref = _by_name(run(files, tmp_path / "out"))[name]
    assert ref.status == "validated", ref.message
    assert triples(ref.rejects_path) == golden(REFS / "refunds.csv", "rejects")  # type: ignore[arg-type]
    rejects = pl.read_csv(ref.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    assert rejects["raw_line"].str.starts_with("re_").all()
    _counts_add_up(ref)
