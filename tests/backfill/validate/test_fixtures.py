"""Each hand-written fixture against its hand-written golden rejects, warnings and exclusions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backfill.contracts import load_contracts
from tests.backfill.validate.helpers import FIXTURES, golden, run, triples

DEFECTS = sorted(FIXTURES.glob("*/*_defects.csv"))
CLEAN = [(p, p.parent.name) for p in sorted(FIXTURES.glob("*/*_clean.csv"))]
KINDS = {p.parent.name for p in DEFECTS}


def test_every_shipped_kind_has_a_defects_fixture() -> None:
    assert set(load_contracts()) == KINDS


@pytest.mark.parametrize("path", DEFECTS, ids=lambda p: p.parent.name)
def test_kind_is_detected_from_the_header(path: Path, tmp_path: Path) -> None:
    (res,) = run([path], tmp_path)
    assert res.kind == path.parent.name, res.why or res.message


@pytest.mark.parametrize("path", DEFECTS, ids=lambda p: p.parent.name)
def test_defects_are_caught_by_the_right_rule_on_the_right_line(path: Path, tmp_path: Path) -> None:
    (res,) = run([path], tmp_path)
    assert res.status == "validated", res.message
    assert triples(res.rejects_path) == golden(path, "rejects")  # type: ignore[arg-type]
    assert triples(res.warnings_path) == golden(path, "warnings")  # type: ignore[arg-type]
    assert triples(res.excluded_path, ("line", "reason")) == golden(path, "excluded")  # type: ignore[arg-type]


@pytest.mark.parametrize("path", DEFECTS, ids=lambda p: p.parent.name)
def test_counts_add_up(path: Path, tmp_path: Path) -> None:
    (res,) = run([path], tmp_path)
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert valid.height == res.rows_valid
    assert res.rows_rejected == len(golden(path, "rejects"))
    assert res.rows_excluded == len(golden(path, "excluded"))
    assert res.rows_read == res.rows_valid + res.rows_rejected + res.rows_excluded
    assert sum(res.rejected_by_rule.values()) == res.rows_rejected


@pytest.mark.parametrize(("path", "kind"), CLEAN, ids=lambda p: getattr(p, "stem", p))
def test_clean_file_passes_whole(path: Path, kind: str, tmp_path: Path) -> None:
    (res,) = run([path], tmp_path, max_reject_rate=0.0)
    assert res.status == "validated" and res.kind == kind
    n = len(path.read_text(encoding="utf-8").splitlines()) - 1
    multi = 1 if "all_columns" in path.name else 0  # one quoted newline in that fixture
    assert res.rows_read == res.rows_valid == n - multi
    assert res.rows_rejected == 0 and res.rows_excluded == 0


def test_stripe_rows_are_in_api_units(tmp_path: Path) -> None:
    (res,) = run([FIXTURES / "stripe_payments" / "all_columns_clean.csv"], tmp_path)
    df = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    rows = {r["id"] or r["payment_intent"]: r for r in df.iter_rows(named=True)}
    aud = rows["ch_3PqA1bC2dE3fG4hI"]
    assert (aud["amount"], aud["currency"], aud["status"], aud["created"]) == (
        "2990",
        "aud",
        "succeeded",
        "1787743914",
    )
    assert aud["order_id (metadata)"] == "A-1001"  # unknown columns pass through
    assert rows["ch_3PqB7kL8mN9oP0qR"]["amount_refunded"] == "106186"
    jpy = rows["py_1PqC3dE4fG5hI6jK"]
    assert (jpy["amount"], jpy["converted_amount"], jpy["fee"]) == ("5000", "3351", "127")
    kwd = rows["pi_3PqD9zY8xW7vU6tS"]
    assert (kwd["amount"], kwd["status"], kwd["captured"]) == ("12000", "failed", "false")
    assert df.columns[:4] == ["id", "payment_intent", "created", "currency"]


def test_raw_line_and_message_in_rejects(tmp_path: Path) -> None:
    (res,) = run([FIXTURES / "stripe_payments" / "default_defects.csv"], tmp_path)
    rej = pl.read_csv(res.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    by_line = {int(r["line"]): r for r in rej.iter_rows(named=True)}
    assert by_line[3]["raw_line"].startswith("ch_2B,2026-03-01 10:05:00,29.905,")
    assert by_line[3]["value"] == "29.905"
    assert "decimal places" in by_line[3]["message"]
    assert by_line[11]["message"] == "24 fields, more than the header's 23"
    assert by_line[30]["raw_line"] == "ch_2W,2026-03-03 12:00:00,12.00"
    assert "ch_2Q" in by_line[22]["message"] and "default_defects.csv:23" in by_line[22]["message"]
