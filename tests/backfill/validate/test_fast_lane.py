"""The fast lane (gate.py + cheap values) must give exactly what the exact lane gives.

Every hand-written fixture is validated twice, with the fast lane and with every row sent to
the exact lane (`fast_lane=False`); reports, rejects, warnings and excluded files must be the
same, and the valid files the same rows (rows the exact lane keeps are appended, so the order
may differ). Then the gate itself: what it embeds, what it refuses, and a value that holds the
gate's separator (a false alarm: the row must stay valid, not be rejected).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from backfill.contracts import load_contracts
from backfill.contracts.model import ColumnSpec
from backfill.validate import FileResult, engine
from backfill.validate.gate import SEP, build_gate, gate_part, pattern_body
from tests.backfill.validate.helpers import FIXTURES, run, triples, write

FILES = sorted(
    p for p in FIXTURES.rglob("*.csv") if ".golden." not in p.name and p.parent.name != "references"
)
KINDS = {p.parent.name for p in FILES}


def _report(path: Path) -> dict[str, object]:
    rep = json.loads(path.read_text(encoding="utf-8"))
    for key in ("seconds", "passes", "rows_per_s", "mb_per_s", "path"):
        rep.pop(key, None)
    return {k: v for k, v in rep.items() if not k.endswith("_path")}


def _sorted_lines(path: Path | None) -> list[str]:
    if path is None or not path.exists():
        return []
    head, *rows = path.read_text(encoding="utf-8").splitlines()
    return [head, *sorted(rows)]


def _assert_agree(fast: FileResult, exact: FileResult) -> None:
    """Same report, same rejects / warnings / excluded files, same valid rows (any order)."""
    assert fast.status == exact.status
    assert (fast.rows_valid, fast.rejected_by_rule, fast.warnings_by_rule) == (
        exact.rows_valid,
        exact.rejected_by_rule,
        exact.warnings_by_rule,
    )
    assert (fast.excluded, fast.duplicates) == (exact.excluded, exact.duplicates)
    for name in ("rejects_path", "warnings_path", "excluded_path"):
        a, b = getattr(fast, name), getattr(exact, name)
        if a is None or not a.exists():
            assert b is None or not b.exists()
            continue
        assert a.read_bytes() == b.read_bytes(), name
    assert _sorted_lines(fast.valid_path) == _sorted_lines(exact.valid_path)
    assert fast.report_path is not None and exact.report_path is not None
    assert _report(fast.report_path) == _report(exact.report_path)


def _both_lanes(paths: list[Path], out: Path, **opts: object) -> list[FileResult]:
    """Validate with the fast lane and with every row in the exact lane; require the same
    results (`_assert_agree`) and return the fast lane's."""
    exact = run(paths, out / "exact", fast_lane=False, **opts)
    fast = run(paths, out / "fast", **opts)
    for f, e in zip(fast, exact, strict=True):
        _assert_agree(f, e)
    return fast


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_and_exact_lanes_agree(tmp_path: Path, path: Path) -> None:
    kind = path.parent.name if path.parent.name in KINDS else None
    _both_lanes([path], tmp_path, kind=kind)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_exact_lane_in_memory_and_streamed_agree(
    tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few doubtful rows are evaluated in memory, many streamed through a file: same results."""
    kind = path.parent.name if path.parent.name in KINDS else None
    in_memory = run([path], tmp_path / "memory", kind=kind)
    monkeypatch.setattr(engine, "_RARE_IN_MEMORY", -1)
    streamed = run([path], tmp_path / "streamed", kind=kind)
    for m, s in zip(in_memory, streamed, strict=True):
        _assert_agree(m, s)
        assert m.valid_path is None or m.valid_path.read_bytes() == s.valid_path.read_bytes()  # type: ignore[union-attr]


def test_a_value_holding_the_separator_is_a_false_alarm_not_a_reject(tmp_path: Path) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Description\n"
    rows = (
        "ch_1,2026-01-05 10:00:00,10.00,0,usd,true,Paid,plain\n"
        f"ch_2,2026-01-05 10:00:00,11.00,0,usd,true,Paid,odd{SEP}text\n"
        f"ch_3{SEP},2026-01-05 10:00:00,12.00,0,usd,true,Paid,x\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    (res,) = run([p], tmp_path / "out")
    assert res.rows_valid == 2
    assert res.rejected_by_rule == {"pattern": 1}
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert sorted(valid["id"].to_list()) == ["ch_1", "ch_2"]
    assert sorted(valid["amount"].to_list()) == ["1000", "1100"]


def test_gate_embeds_anchored_patterns_and_refuses_unsafe_ones() -> None:
    assert pattern_body("^(ch|py)_[A-Za-z0-9]+$") == "(ch|py)_[A-Za-z0-9]+"
    d = SEP + ',"\x00'  # the delimiters, and NUL (a line holding one misses the gate)
    assert pattern_body(r"^[^@\s]+@[^@\s]+\.[^@\s]+$") == (rf"[^{d}@\s]+@[^{d}@\s]+\.[^{d}@\s]+")
    assert pattern_body(r"^\d{1,19}$") == "[0-9]{1,19}"  # ASCII digits: stricter
    unsafe = ("^a.b$", "abc$", "^abc", r"^\D+$", "^(?i)abc$", "^a$|^b$", "^[a-z$", "^a,b$")
    unsafe += ("^[ -~]+$", r"^[\W]+$", "^[[:alpha:]]+$", r"^\x2c$", r"^a\"b$")
    for pattern in unsafe:
        assert pattern_body(pattern) is None, pattern


def test_gate_parts_per_type() -> None:
    money = ColumnSpec(name="a", header="A", type="money", currency="c", signed=True)
    part, rules = gate_part(money, "plain")  # type: ignore[misc]
    assert rules == {"number_format", "money_range"}
    rx = re.compile(f"^{part}$")
    for ok in ("", "12", "-12.5", "12.500", "12.5000", "0.07", "999999999999.999"):
        assert rx.match(ok), ok
    bad_forms = ("1e3", "12.3456", "1,000.00", "+5", ".5", "5.", " 5", "5.-1", "--5")
    for bad in (*bad_forms, "1000000000000", "0000000000001"):  # 13 digits: maybe too large
        assert not rx.match(bad), bad
    # Unsigned, or a minimum of 0: no minus sign, so `negative` / `below_minimum` are decided.
    unsigned = ColumnSpec(name="a", header="A", type="money", currency="c")
    part, rules = gate_part(unsigned, "plain")  # type: ignore[misc]
    assert rules == {"number_format", "money_range", "negative"}
    assert not re.match(f"^{part}$", "-12.5") and re.match(f"^{part}$", "12.5")
    floor = ColumnSpec(name="f", header="F", type="money", currency="c", signed=True, minimum=0)
    assert gate_part(floor, "plain")[1] == {"number_format", "money_range", "below_minimum"}  # type: ignore[index]
    above = ColumnSpec(name="f", header="F", type="int", minimum=5)
    part, rules = gate_part(above, "plain")  # type: ignore[misc]
    assert rules == {"int_format"} and not re.match(f"^{part}$", "-1")  # 5 is checked, 0..4 too
    points = ColumnSpec(name="p", header="P", type="int")
    assert re.match(f"^{gate_part(points, 'plain')[0]}$", "-250")  # type: ignore[index]
    # Non-nullable: no empty cell, and `required_value` is decided.
    req = ColumnSpec(name="a", header="A", type="money", currency="c", nullable=False)
    part, rules = gate_part(req, "plain")  # type: ignore[misc]
    assert "required_value" in rules and not re.match(f"^{part}$", "")
    spaced = ColumnSpec(name="s", header="S", pattern="^[a-z ]+$", nullable=False)
    assert "required_value" not in gate_part(spaced, "plain")[1]  # type: ignore[index]
    # A currency column: the known codes its pattern allows, in lower case only.
    cur = ColumnSpec(name="c", header="C", pattern="^[A-Za-z]{3}$", nullable=False)
    part, rules = gate_part(cur, "plain", currency=True)  # type: ignore[misc]
    assert rules == {"pattern", "currency_code", "required_value"}
    got = [bool(re.match(f"^{part}$", c)) for c in ("usd", "jpy", "USD", "xyz", "", "usdx")]
    assert got == [True, True, False, False, False, False]
    # No part may hold a comma: it would let a cell swallow a CSV delimiter.
    assert gate_part(money, "de") is None
    en = re.compile(f"^{gate_part(money, 'en')[0]}$")  # type: ignore[index]
    assert en.match("1234.50") and not en.match("1,234.50")
    dt = ColumnSpec(name="d", header="D", type="datetime", formats=("ymd_hm", "ymd_hms"))
    part, _ = gate_part(dt, "plain")  # type: ignore[misc]
    rx = re.compile(f"^{part}$")
    for ok in ("2024-01-05 10:00", "2024-01-05 10:00:59", ""):
        assert rx.match(ok), ok
    for bad in ("2024-1-5 1:2:3", "2024-01-05 23:59:60", "2024-13-01 00:00", "2024-01-05 24:00"):
        assert not rx.match(bad), bad
    iso = ColumnSpec(name="d", header="D", type="datetime", formats=("iso_offset",))
    assert gate_part(iso, "plain") is None
    loose = ColumnSpec(name="s", header="S", pattern="^x.*$")
    assert gate_part(loose, "plain") is None


def test_every_shipped_contract_has_a_gate_whose_pattern_compiles() -> None:
    for kind, contract in load_contracts().items():
        gate = build_gate(contract, contract.number_locale, {})
        assert gate is not None, kind
        df = pl.DataFrame({c.name: [""] for c in contract.columns})
        df.select(gate.ok)  # compiles and runs


def test_padded_cells_are_trimmed_the_same_in_both_lanes(tmp_path: Path) -> None:
    header = (
        "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Description,"
        "Customer Email\n"
    )
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,plain,a@b.co\n"
        " ch_2 ,2026-01-05 10:00:00 ,\t11.00,0, USD ,TRUE , paid ,\u00a0padded\u00a0, c@d.co \n"
        "ch_3,2026-01-05 10:00:00,12.00,0,usd,false,Refunded,\u2003,e f@g.co\n"
        "ch_4,2026-01-05 10:00:00,13.00,0,usd,True,Weird,x,\n"
        "ch 5,2026-01-05 10:00:00,14.00,0,usd,true,Paid,x,\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.rows_valid == 4
    assert fast.rejected_by_rule == {"pattern": 1}
    assert fast.warnings_by_rule["enum"] == 1 and fast.warnings_by_rule["pattern"] == 1
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    row = valid.filter(pl.col("id") == "ch_2").row(0, named=True)
    assert (row["amount"], row["currency"], row["captured"], row["status"]) == (
        "1100",
        "usd",
        "true",
        "succeeded",
    )
    assert row["description"] == "padded"


def test_whitespace_free_patterns() -> None:
    from backfill.validate.gate import whitespace_free

    assert whitespace_free("(ch|py)_[A-Za-z0-9]+")
    assert whitespace_free(r"[^@\s]+@[^@\s]+\.[^@\s]+")
    assert not whitespace_free(r"[^\d@#]*")
    assert not whitespace_free("a b")
    assert not whitespace_free(r"a\sb")
    assert not whitespace_free(r"[a\t]")


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("tail", ["", 'ch_9,2026-01-05 10:00:00,"19.00'])
def test_lanes_agree_around_multiline_blank_and_ragged_records(
    tmp_path: Path, eol: str, tail: str
) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Description"
    lines = [
        header,
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,plain",
        'ch_2,2026-01-05 10:00,11.00,0,usd,true,Paid,"two' + eol + 'lines, with a comma"',
        "ch_3,2026-01-05 10:00,12.00,0,usd,true,Paid,after the span",
        "",
        "ch_4,2026-01-05 10:00,13.00,0,usd,true,Paid",
        "ch_5,2026-01-05 10:00,14.00,0,usd,true,Paid,x,extra",
        '"ch_6",2026-01-05 10:00,"1,000.00",0,usd,true,Paid,quoted',
        'ch_7,2026-01-05 10:00,16.00,0,usd,true,Paid,"a ""quoted"" word"',
        "ch_8,2026-02-30 10:00,17.00,0,usd,true,Paid,no such day",
        'ch_10,2026-01-05 10:00,20.00,0,usd,true,Paid,"three' + eol + "lines" + eol + 'here"',
        "ch_11,2026-01-05 10:00,21.00,0,usd,true,Paid,last",
        'ch_12,2026-01-05 10:00,22.00,0,usd,true,Paid," padded, with a comma "',
        'ch_13,2026-01-05 10:00,23.00,0,usd,true,"Paid",""',
    ]
    text = eol.join(lines) + eol + tail
    p = tmp_path / "p.csv"
    p.write_bytes(text.encode())
    (fast,) = _both_lanes([p], tmp_path)
    rejects = pl.read_csv(fast.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    by_line = dict(zip(rejects["line"].to_list(), rejects["rule"].to_list(), strict=True))
    assert by_line["7"] == "field_count" and by_line["8"] == "field_count"
    assert by_line["9"] == "number_format"  # "1,000.00" in the plain locale
    assert by_line["11"] == "datetime_invalid"
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    valid_ids = set(valid["id"].to_list())
    assert {"ch_1", "ch_2", "ch_3", "ch_7", "ch_10", "ch_11", "ch_12", "ch_13"} <= valid_ids
    assert valid.filter(pl.col("id") == "ch_12")["description"].item() == "padded, with a comma"


def test_scientific_notation_is_covered_only_for_patterns_that_start_with_a_letter() -> None:
    from backfill.validate.gate import _starts_with_a_letter

    for inner in ("(ch|py)_[A-Za-z0-9]+", "cus_[A-Za-z0-9]+", "(?:re|pyr)_[a-z]+"):
        assert _starts_with_a_letter(inner), inner
    for inner in (r"\d{1,19}", "(a|1)x", "(ch|py)?x", "[a-z]+", "a?1", "a|1", "(a|b)|1"):
        assert not _starts_with_a_letter(inner), inner
    ident = ColumnSpec(name="id", header="id", pattern="^ch_[a-z0-9]+$", no_scientific=True)
    assert gate_part(ident, "plain")[1] == {"pattern", "excel_scientific"}  # type: ignore[index]
    digits = ColumnSpec(name="m", header="m", pattern=r"^\d{8,15}$", no_scientific=True)
    assert gate_part(digits, "plain")[1] == {"pattern"}  # type: ignore[index]


def test_non_ascii_digits_take_the_exact_lane_and_agree(tmp_path: Path) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Card Last4\n"
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,4242\n"
        "ch_2,2026-01-05 10:00,\u0663\u0660.00,0,usd,true,Paid,4242\n"
        "ch_3,\u0662026-01-05 10:00,12.00,0,usd,true,Paid,\u0664242\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.rows_valid == 1
    # Named for what they are: not numbers / not dates (their casts failed: not "too large").
    assert triples(fast.rejects_path) == [  # type: ignore[arg-type]
        ("3", "Amount", "number_format"),
        ("4", "Created date (UTC)", "datetime_format"),
    ]


def test_identities_hashed_from_the_lines_find_the_same_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    header = (
        "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,"
        "PaymentIntent ID,Description\n"
    )
    a = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,pi_1,first\n"
        "ch_2,2026-01-05 10:00,11.00,0,usd,true,Paid,pi_2,\n"
        ",2026-01-05 10:00,12.00,0,usd,true,Paid,pi_9,no charge id\n"
        'ch_4,2026-01-05 10:00,13.00,0,usd,true,Paid,pi_4,"quoted, text"\n'
    )
    b = (
        '"ch_1",2026-01-05 10:00,10.00,0,usd,true,Paid,pi_1,first\n'  # same row, quoted id
        " ch_2 ,2026-01-05 10:00,99.00,0,usd,true,Paid,pi_2,\n"  # same id, other content
        ",2026-01-05 10:00,12.00,0,usd,true,Paid,pi_9,no charge id\n"  # same PaymentIntent
        'ch_5,2026-01-05 10:00,14.00,0,usd,true,Paid,pi_5,"multi\nline"\n'
        'ch_4,2026-01-05 10:00,13.00,0,usd,true,Paid,pi_4,"quoted, text"\n'
    )
    pa, pb = write(tmp_path, "a.csv", header + a), write(tmp_path, "b.csv", header + b)
    contracts = load_contracts()
    contract = contracts["stripe_payments"]
    matched = engine.detect(contracts, header.strip().split(","), None)[0]
    assert engine._identity_is_first_cell(contract, matched, "plain")
    exact = run([pa, pb], tmp_path / "exact", fast_lane=False)

    def no_read(files: object) -> None:
        raise AssertionError("the duplicates pass read the files")

    monkeypatch.setattr(engine, "_duplicates", no_read)
    fast = run([pa, pb], tmp_path / "fast")
    for f, e in zip(fast, exact, strict=True):
        _assert_agree(f, e)
    fa, fb = fast
    assert fb.excluded == {"exact_duplicate": 3}  # ch_1 (quoted), the pi_9 row, ch_4
    assert fa.rejected_by_rule == {"duplicate_id": 1} and fb.rejected_by_rule == {"duplicate_id": 1}


@pytest.mark.parametrize(
    ("locale", "rows"),
    [
        (
            "en",
            "ch_1,2026-01-05 10:00,1234.50,0,usd,true,Paid\n"
            'ch_2,2026-01-05 10:00,"1,234.50",0,usd,true,Paid\n'
            "ch_3,2026-01-05 10:00,1,234.50,0,usd,true,Paid\n",  # unquoted: one field too many
        ),
        (
            "de",
            'ch_1,2026-01-05 10:00,"1234,50",0,usd,true,Paid\n'
            'ch_2,2026-01-05 10:00,"1.234,50",0,usd,true,Paid\n'
            "ch_3,2026-01-05 10:00,1234,50,0,usd,true,Paid\n",  # unquoted: one field too many
        ),
    ],
)
def test_locales_with_separators_agree_and_keep_field_counts(
    tmp_path: Path, locale: str, rows: str
) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status\n"
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path, locale=locale)
    assert fast.rows_valid == 2
    assert fast.rejected_by_rule == {"field_count": 1}
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert valid["amount"].to_list() == ["123450", "123450"]


@pytest.mark.parametrize("locale", ["plain", "en", "de"])
def test_no_gate_part_of_a_shipped_contract_swallows_a_delimiter(locale: str) -> None:
    samples = ["1,234.50", "1234,50", "a,b", "ch_1,ch_2", '"x"', 'a"b', "2026-01-05 10:00,00"]
    for kind, contract in load_contracts().items():
        for col in contract.columns:
            got = gate_part(col, locale)  # type: ignore[arg-type]
            if got is None:
                continue
            rx = re.compile(f"^{got[0]}$".replace("(?i-u:", "(?i:"))  # Python has no -u
            for s in samples:
                assert not rx.match(s), (kind, col.name, s)


def test_case_insensitive_enums_fold_ascii_only(tmp_path: Path) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status\n"
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,paid\n"
        "ch_2,2026-01-05 10:00,10.00,0,usd,true,PAID\n"
        "ch_3,2026-01-05 10:00,10.00,0,usd,true,Pending\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.rows_valid == 3 and fast.warnings_by_rule == {}
    # Unicode case folding would let the Kelvin sign stand for k and a long s for s, which
    # the rule (lower-casing) rejects: the gate must not accept them.
    col = ColumnSpec(name="e", header="E", enum=("Kept", "Yes"), case_insensitive=True)
    part = gate_part(col, "plain")[0]  # type: ignore[index]
    got = pl.Series(["kept", "KEPT", "\u212aept", "ye\u017f"]).str.contains(f"^{part}$")
    assert got.to_list() == [True, True, False, False]


def test_values_in_other_cases_take_the_exact_lane_and_agree(tmp_path: Path) -> None:
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Mode\n"
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,Live\n"
        "ch_2,2026-01-05 10:00,10.00,0,USD,true,paid,live\n"
        "ch_3,2026-01-05 10:00,10.00,0,usd,true,Paid,Test\n"
        "ch_4,2026-01-05 10:00,10.00,0,usd,true,Paid,test\n"
        "ch_5,2026-01-05 10:00,10.00,0,Usd,true,REFUNDED,TEST\n"
        "ch_6,2026-01-05 10:00,10.00,0,usd,true,Refunded,\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.excluded == {"test_mode": 3}
    assert fast.rows_valid == 3
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert sorted(valid["currency"].to_list()) == ["usd", "usd", "usd"]
    assert sorted(valid["status"].to_list()) == ["succeeded", "succeeded", "succeeded"]


def test_many_doubtful_records_fall_back_to_the_duplicates_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backfill.validate import structure

    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status\n"
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid\n"
        '"ch_1",2026-01-05 10:00,10.00,0,usd,true,Paid\n'  # doubtful (quoted id), a duplicate
        "ch_2,2026-01-05 10:00,11.00,0,usd,true,Paid\n"
    )
    p = write(tmp_path, "p.csv", header + rows)
    monkeypatch.setattr(structure, "_MAX_DOUBTFUL_KEYS", 0)  # and 1 % of 3 records is 0
    calls: list[int] = []
    real = engine._duplicates
    monkeypatch.setattr(engine, "_duplicates", lambda files: calls.append(1) or real(files))
    (fast,) = _both_lanes([p], tmp_path)
    assert len(calls) == 2  # the exact-lane run and the fast-lane run both read identities
    assert fast.excluded == {"exact_duplicate": 1}


def test_rules_the_gate_decides_still_fail_in_the_exact_lane(tmp_path: Path) -> None:
    """Signs, sizes, empty required cells and currency codes the gate refuses take the exact
    lane, which names the rule (or keeps the row: `USD`, a zero-padded amount)."""
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Fee\n"
    rows = (
        "ch_1,2026-01-05 10:00,10.00,0,usd,true,Paid,0.59\n"
        "ch_2,2026-01-05 10:00,-10.00,0,usd,true,Paid,0.59\n"  # negative (error)
        "ch_3,2026-01-05 10:00,10.00,0,usd,true,Paid,-0.59\n"  # below_minimum (warning)
        "ch_4,2026-01-05 10:00,10.00,0,,true,Paid,\n"  # required_value
        "ch_5,2026-01-05 10:00,10.00,0,USD,true,Paid,\n"  # valid
        "ch_6,2026-01-05 10:00,10.00,0,xyz,true,Paid,\n"  # currency_code
        "ch_7,2026-01-05 10:00,1000000000000,0,usd,true,Paid,\n"  # money_range
        "ch_8,2026-01-05 10:00,0000000000001,0,usd,true,Paid,\n"  # valid: 100 cents
        "ch_9,2026-01-05 10:00,10.00,0,usd,,Paid,\n"  # required_value
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.rejected_by_rule == {
        "negative": 1,
        "required_value": 2,
        "currency_code": 1,
        "money_range": 1,
    }
    assert fast.warnings_by_rule == {"below_minimum": 1}
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert sorted(valid["id"].to_list()) == ["ch_1", "ch_3", "ch_5", "ch_8"]
    assert sorted(valid["amount"].to_list()) == ["100", "1000", "1000", "1000"]


def test_one_test_per_amount_stands_in_for_its_scale_rules_and_agrees(tmp_path: Path) -> None:
    """Zero-, two- and three-decimal currencies and ISK: the fast lane's single multiple test
    per amount sends every row that may break money_scale, three_decimal_last_digit or
    isk_fraction to the exact lane, which names the rule (or finds none)."""
    header = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Fee\n"
    rows = (
        "ch_1,2026-01-05 10:00,12.340,0,kwd,true,Paid,0.010\n"  # valid
        "ch_2,2026-01-05 10:00,12.345,0,kwd,true,Paid,\n"  # three_decimal (warning)
        "ch_3,2026-01-05 10:00,1200,0,jpy,true,Paid,36\n"  # valid
        "ch_4,2026-01-05 10:00,12.5,0,jpy,true,Paid,\n"  # money_scale
        "ch_5,2026-01-05 10:00,10.00,0,isk,true,Paid,1\n"  # valid
        "ch_6,2026-01-05 10:00,10.50,0,isk,true,Paid,\n"  # isk_fraction (warning)
        "ch_7,2026-01-05 10:00,10.005,0,usd,true,Paid,\n"  # money_scale
        "ch_8,2026-01-05 10:00,10.5,0,usd,true,Paid,0.30\n"  # valid
        "ch_9,2026-01-05 10:00,10.5,0,usd,true,Paid,0.305\n"  # money_scale on Fee
    )
    p = write(tmp_path, "p.csv", header + rows)
    (fast,) = _both_lanes([p], tmp_path)
    assert fast.rejected_by_rule == {"money_scale": 3}
    assert fast.warnings_by_rule == {"isk_fraction": 1, "three_decimal_last_digit": 1}
    valid = pl.read_csv(fast.valid_path, infer_schema=False)  # type: ignore[arg-type]
    got = dict(zip(valid["id"].to_list(), valid["amount"].to_list(), strict=True))
    assert got == {
        "ch_1": "12340",
        "ch_2": "12345",
        "ch_3": "1200",
        "ch_5": "1000",
        "ch_6": "1050",
        "ch_8": "1050",
    }


def test_enum_values_are_mapped_by_position_as_the_chain_maps_them() -> None:
    """The fast lane maps a case-insensitive enum by the text's position among the values;
    the exact lane by a chain over the lower-cased text: the same output for every canonical
    value (a key in another case, a value the map leaves out), null for any other text."""
    from backfill.validate.values import output_value, stage_index, stage_lower

    col = ColumnSpec(
        name="s",
        header="S",
        enum=("Paid", "Refunded", "Other"),
        case_insensitive=True,
        enum_map={"PAID": "succeeded", "paid": "ignored", "Refunded": "succeeded"},
    )
    contract = load_contracts()["stripe_payments"].model_copy(
        update={"columns": [col], "rules": [], "exclude": [], "unique": []}
    )
    df = pl.DataFrame({"s": ["Paid", "Refunded", "Other", "paid", "x", "", None]})
    fast = (
        df.lazy()
        .with_columns(stage_index(contract))
        .with_columns(stage_lower(contract, fast=True))
        .select(output_value(col, fast=True))
        .collect()["s"]
        .to_list()
    )
    exact = (
        df.lazy()
        .with_columns(stage_lower(contract))
        .select(output_value(col))
        .collect()["s"]
        .to_list()
    )
    assert fast[:3] == exact[:3] == ["succeeded", "succeeded", "other"]
    assert fast[3:] == [None, None, None, None]  # not canonical: the exact lane decides


def test_currency_codes_in_the_gate_are_those_the_pattern_rule_passes() -> None:
    """The codes are filtered with the rule's own test (`str.contains`): an unanchored
    pattern keeps every code it finds a match in, a narrower one only its own."""
    usd_only = ColumnSpec(name="c", header="C", pattern="^usd$")
    part, _ = gate_part(usd_only, "plain", currency=True)  # type: ignore[misc]
    assert part in ("(?:usd)?", "(?:usd)")
    prefix = ColumnSpec(name="c", header="C", pattern="^e")  # unanchored end: eur, egp, ...
    part, _ = gate_part(prefix, "plain", currency=True)  # type: ignore[misc]
    assert "eur" in part and "usd" not in part
    broken = ColumnSpec(name="c", header="C", pattern="^[a-z")  # not a regex: no code part
    assert gate_part(broken, "plain", currency=True) is None


def test_an_enum_that_repeats_a_value_is_mapped_by_position_too() -> None:
    from backfill.validate.values import output_value, stage_index, stage_lower

    col = ColumnSpec(
        name="s", header="S", enum=("Paid", "Paid", "Failed"), case_insensitive=True,
        enum_map={"Paid": "succeeded"},
    )  # fmt: skip
    contract = load_contracts()["stripe_payments"].model_copy(
        update={"columns": [col], "rules": [], "exclude": [], "unique": []}
    )
    df = pl.DataFrame({"s": ["Paid", "Failed", "PAID"]})
    got = (
        df.lazy()
        .with_columns(stage_index(contract))
        .with_columns(stage_lower(contract, fast=True))
        .select(output_value(col, fast=True), lowered=pl.col("__l_s"))
        .collect()
    )
    assert got["s"].to_list() == ["succeeded", "failed", None]
    assert got["lowered"].to_list() == ["paid", "failed", None]
