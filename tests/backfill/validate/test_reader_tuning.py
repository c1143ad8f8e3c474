"""The CSV reader's chunk size: a default the user can override, never a value polars panics on."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from backfill.validate.reader_tuning import CSV_CHUNK_BYTES, apply_reader_defaults
from tests.backfill.validate.helpers import FIXTURES, run

VAR = "POLARS_CSV_CHUNK_SIZE"


def test_unset_gets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    apply_reader_defaults()
    assert os.environ[VAR] == str(CSV_CHUNK_BYTES)


def test_a_users_value_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "1048576")
    apply_reader_defaults()
    assert os.environ[VAR] == "1048576"


@pytest.mark.parametrize("bad", ["", "0", "-5", "4MB"])
def test_a_value_polars_would_panic_on_is_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str
) -> None:
    monkeypatch.setenv(VAR, bad)
    apply_reader_defaults()
    assert os.environ[VAR] == str(CSV_CHUNK_BYTES)
    # polars reads the variable at every scan: the value set must be one it takes.
    p = tmp_path / "a.csv"
    p.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    assert pl.scan_csv(p).collect(engine="streaming").height == 2


def test_chunks_smaller_than_a_record_give_the_same_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Records straddling chunk boundaries (newlines inside quotes included) are read whole:
    a fixture with every kind of defect validates to the same bytes with 64-byte chunks."""
    src = FIXTURES / "stripe_payments" / "default_defects.csv"
    (default,) = run([src], tmp_path / "default")
    monkeypatch.setenv(VAR, "64")  # smaller than one record
    (small,) = run([src], tmp_path / "small")
    for name in ("valid_path", "rejects_path", "warnings_path", "excluded_path"):
        a, b = getattr(default, name), getattr(small, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.read_bytes() == b.read_bytes(), name
