"""Local side: which files a directory contributes, metadata from the validator's reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backfill.ship import SourceRefused, expand_inputs
from backfill.ship.source import FileMeta, prepare_source, read_sidecar


def test_validated_output_dir_ships_only_valid_files(tmp_path: Path) -> None:
    for name in (
        "payments.valid.csv",
        "payments.rejects.csv",
        "payments.warnings.csv",
        "payments.excluded.csv",
        "payments.report.json",
        "validate-report.json",
        ".payments.valid.csv.ab12.part",
    ):
        (tmp_path / name).write_text("x\n")
    assert [p.name for p in expand_inputs([tmp_path])] == ["payments.valid.csv"]


def test_plain_dir_skips_reports_and_temporaries(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv", "a.csv.report.json", "c.tmp", ".hidden.csv"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.csv", "b.csv"]


def test_validator_report_gives_rows_and_contract(tmp_path: Path) -> None:
    valid = tmp_path / "pay.valid.csv"
    valid.write_text("id\n1\n2\n")
    (tmp_path / "pay.report.json").write_text(
        json.dumps({"status": "validated", "rows_valid": 2, "kind": "stripe_payments"})
    )
    assert read_sidecar(valid) == FileMeta(rows=2, contract="stripe_payments")
    src = prepare_source(valid, gzip_it=False, staging_dir=tmp_path / "st")
    assert src.meta.rows == 2 and src.remote_name == "pay.valid.csv"


def test_file_marked_failed_by_validation_is_refused(tmp_path: Path) -> None:
    valid = tmp_path / "bad.valid.csv"
    valid.write_text("id\n1\n")
    (tmp_path / "bad.report.json").write_text(json.dumps({"status": "failed", "rows_valid": 1}))
    with pytest.raises(SourceRefused, match="failed"):
        prepare_source(valid, gzip_it=False, staging_dir=tmp_path / "st")


def test_unreadable_report_leaves_metadata_unknown(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("x\n")
    (tmp_path / "a.csv.report.json").write_text("{not json")
    assert read_sidecar(f) == FileMeta()


def test_gzip_staging_is_deterministic(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"id,v\n" + b"1,2\n" * 1000)
    one = prepare_source(f, gzip_it=True, staging_dir=tmp_path / "s1")
    two = prepare_source(f, gzip_it=True, staging_dir=tmp_path / "s2")
    assert one.upload_path.read_bytes() == two.upload_path.read_bytes()
    assert one.remote_name == "a.csv.gz" and one.compression == "gzip"


def test_missing_and_directory_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="no such file"):
        prepare_source(tmp_path / "nope.csv", gzip_it=False, staging_dir=tmp_path)
    with pytest.raises(SourceRefused, match="not a regular file"):
        prepare_source(tmp_path, gzip_it=False, staging_dir=tmp_path)
