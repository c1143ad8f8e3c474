"""Bytes and structure: BOM, CRLF, Windows-1252/Latin-1, declared encodings, ragged and cut-off rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.backfill.validate.helpers import FIXTURES, run, triples, write

HEADER = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Description"
ROW = "ch_{n},2026-01-05 10:00:00,1.00,0,usd,true,Paid,{d}"


def test_windows_1252_is_detected_converted_and_reported(tmp_path: Path) -> None:
    rows = [HEADER, ROW.format(n=1, d="Caf\u00e9 \u2013 cr\u00e8me"), ROW.format(n=2, d="plain")]
    p = write(tmp_path, "p.csv", "\r\n".join(rows) + "\r\n", encoding="cp1252")
    (res,) = run([p], tmp_path / "out")
    assert res.status == "validated" and res.encoding == "windows-1252"
    assert "line 2" in res.encoding_note and res.line_endings == "CRLF"
    desc = pl.read_csv(res.valid_path, infer_schema=False)["description"].to_list()  # type: ignore[arg-type]
    assert desc == ["Caf\u00e9 \u2013 cr\u00e8me", "plain"]


def test_latin1_when_bytes_undefined_in_1252(tmp_path: Path) -> None:
    body = (
        HEADER + "\n" + ROW.format(n=1, d="x") + "\n"
    ).encode() + b"ch_2,2026-01-05 10:00:00,1.00,0,usd,true,Paid,a\x81b\n"
    p = tmp_path / "p.csv"
    p.write_bytes(body)
    (res,) = run([p], tmp_path / "out")
    assert res.encoding == "iso8859-1" and "line 3" in res.encoding_note


def test_declared_encoding_that_does_not_fit_is_unreadable(tmp_path: Path) -> None:
    p = write(
        tmp_path, "p.csv", HEADER + "\n" + ROW.format(n=1, d="Café") + "\n", encoding="cp1252"
    )
    (res,) = run([p], tmp_path / "out", encoding="utf-8")
    assert res.status == "unreadable"
    assert "p.csv" in res.message and "line 2" in res.message


def test_bom_and_crlf_do_not_reach_header_or_values(tmp_path: Path) -> None:
    p = write(tmp_path, "p.csv", "\ufeff" + HEADER + "\r\n" + ROW.format(n=1, d="x") + "\r\n")
    (res,) = run([p], tmp_path / "out")
    assert res.bom and res.rows_valid == 1
    df = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert df["id"].to_list() == ["ch_1"] and df["description"].to_list() == ["x"]


def test_line_numbers_count_newlines_inside_quotes(tmp_path: Path) -> None:
    rows = [
        HEADER,
        ROW.format(n=1, d='"a\nb\nc"'),
        ROW.format(n=2, d="x"),
        "ch_3,2026-01-05 10:00:00,1.5555,0,usd,true,Paid,y",
    ]
    p = write(tmp_path, "p.csv", "\n".join(rows) + "\n")
    (res,) = run([p], tmp_path / "out")
    assert res.rows_read == 3 and res.rows_valid == 2
    assert triples(res.rejects_path) == [(str(6), "Amount", "money_scale")]  # type: ignore[arg-type]


def test_ragged_rows_and_cut_off_last_line(tmp_path: Path) -> None:
    rows = [
        HEADER,
        ROW.format(n=1, d="x") + ",extra",
        "ch_2,2026-01-05 10:00:00,1.00",
        ROW.format(n=3, d="x"),
        'ch_4,2026-01-05 10:00:00,1.00,0,usd,true,Paid,"never closed',
    ]
    p = write(tmp_path, "p.csv", "\n".join(rows))
    (res,) = run([p], tmp_path / "out")
    assert triples(res.rejects_path) == [
        ("2", "", "field_count"),
        ("3", "", "field_count"),
        ("5", "", "truncated_record"),
    ]  # type: ignore[arg-type]
    assert res.rows_read == 4 and res.rows_valid == 1


@pytest.mark.parametrize("fast_lane", [True, False])
def test_a_nul_byte_rejects_its_record_whole(tmp_path: Path, fast_lane: bool) -> None:
    """A NUL byte anywhere in a record (typed cell, free text, a line of a multi-line record)
    rejects that record as `nul_byte`, with its whole raw text; the other records are read as
    usual. A cut-off last record is reported as cut off, whatever it holds."""
    rows = [
        HEADER,
        ROW.format(n=1, d="before\x00after"),
        ROW.format(n=2, d="x"),
        "ch_3\x00,2026-01-05 10:00:00,1.00,0,usd,true,Paid,y",
        ROW.format(n=4, d='"multi\nline\x00 text"'),
        ROW.format(n=5, d="z"),
        "ch_6,2026-01-05 10:00:00,1.00,0,usd\x00",
    ]
    p = write(tmp_path, "p.csv", "\n".join(rows))
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert triples(res.rejects_path) == [  # type: ignore[arg-type]
        ("2", "", "nul_byte"),
        ("4", "", "nul_byte"),
        ("5", "", "nul_byte"),
        ("8", "", "truncated_record"),
    ]
    assert (res.rows_read, res.rows_valid, res.rows_rejected) == (6, 2, 4)
    rej = pl.read_csv(res.rejects_path, infer_schema=False)  # type: ignore[arg-type]
    assert rej["raw_line"].to_list()[:3] == [rows[1], rows[3], rows[4]]
    at = rows[1].index("\x00") + 1
    assert rej["message"][0].startswith(f"a NUL byte (0x00) at character {at} of the record")
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert sorted(valid["id"].to_list()) == ["ch_2", "ch_5"]


@pytest.mark.parametrize("final_cr", [True, False])
def test_lines_ending_in_cr_only_are_read_as_lines(tmp_path: Path, final_cr: bool) -> None:
    """Classic Mac OS line ends (Excel's "CSV (Macintosh)"): every CR ends a line, so no row is
    lost to one long header line; line numbers count those lines; the report says so."""
    rows = [
        HEADER,
        ROW.format(n=1, d="x"),
        ROW.format(n=2, d='"two\rlines"'),
        "ch_3,2026-01-05 10:00:00,1.5555,0,usd,true,Paid,y",
        ROW.format(n=4, d="z"),
    ]
    p = write(tmp_path, "p.csv", "\r".join(rows) + ("\r" if final_cr else ""))
    (res,) = run([p], tmp_path / "out")
    assert (res.rows_read, res.rows_valid, res.rows_rejected) == (4, 3, 1)
    assert triples(res.rejects_path) == [("5", "Amount", "money_scale")]  # type: ignore[arg-type]
    assert res.line_endings == "CR" and "CR only" in res.line_end_note
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert valid.filter(pl.col("id") == "ch_2")["description"].to_list() == ["two\nlines"]


def test_windows_1252_with_cr_line_ends_names_the_right_line(tmp_path: Path) -> None:
    rows = [HEADER, ROW.format(n=1, d="x"), ROW.format(n=2, d="caf\u00e9"), ROW.format(n=3, d="y")]
    p = write(tmp_path, "p.csv", "\r".join(rows) + "\r", encoding="cp1252")
    (res,) = run([p], tmp_path / "out")
    assert res.encoding == "windows-1252" and "line 3" in res.encoding_note
    assert (res.rows_read, res.rows_valid, res.line_endings) == (3, 3, "CR")


def test_a_lone_cr_inside_lf_lines_is_a_character_not_a_line_end(tmp_path: Path) -> None:
    rows = [HEADER, ROW.format(n=1, d='"a\rb"'), ROW.format(n=2, d="y")]
    p = write(tmp_path, "p.csv", "\n".join(rows) + "\n")
    (res,) = run([p], tmp_path / "out")
    assert (res.rows_read, res.rows_valid, res.line_endings, res.line_end_note) == (2, 2, "LF", "")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_or_32_byte_order_mark_is_read_as_that_encoding(
    tmp_path: Path, encoding: str
) -> None:
    """Excel's "Unicode Text" is UTF-16: read by its byte-order mark, not taken for a
    Windows-1252 file (which decoded it to text full of NULs); line ends counted on the text."""
    rows = [
        HEADER,
        ROW.format(n=1, d="caf\u00e9"),
        "ch_2,2026-01-05 10:00:00,1.5555,0,usd,true,Paid,y",
    ]
    text = "\r\n".join(rows) + "\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # the BOM Python's big-endian codec does not write
    p = tmp_path / "p.csv"
    p.write_bytes(data)
    (res,) = run([p], tmp_path / "out")
    assert res.encoding == ("utf-32" if encoding == "utf-32" else "utf-16")
    assert res.encoding_note.endswith("(byte-order mark); converted to UTF-8")
    assert (res.rows_read, res.rows_valid, res.line_endings) == (2, 1, "CRLF")
    assert triples(res.rejects_path) == [("3", "Amount", "money_scale")]  # type: ignore[arg-type]
    valid = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert valid["description"].to_list() == ["caf\u00e9"]


def test_a_byte_order_mark_that_lies_makes_the_file_unreadable(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    # a high surrogate followed by a newline, not by the low half of a pair
    p.write_bytes(b"\xff\xfe" + HEADER.encode("utf-16-le") + b"\x00\xd8\n\x00")
    (res,) = run([p], tmp_path / "out")
    assert res.status == "unreadable" and "despite its byte-order mark" in res.message


def test_a_directory_or_a_missing_path_is_named_as_such(tmp_path: Path) -> None:
    (d, missing) = run([tmp_path, tmp_path / "nope.csv"], tmp_path / "out")
    assert (d.status, d.message) == ("unreadable", f"{tmp_path}: a directory, not a file")
    assert missing.message == f"{tmp_path / 'nope.csv'}: no such file"


def test_a_first_line_without_a_header_is_named(tmp_path: Path) -> None:
    bom_only = tmp_path / "bom.csv"
    bom_only.write_bytes(b"\xef\xbb\xbf")
    blank_first = write(tmp_path, "blank.csv", "\n" + HEADER + "\n")
    for res in run([bom_only, blank_first], tmp_path / "out"):
        assert res.status == "header" and res.message.endswith(
            "the first line is empty (no header)"
        )


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_separated_by_something_else_gets_a_hint(
    tmp_path: Path, sep: str, name: str
) -> None:
    rows = [HEADER, ROW.format(n=1, d="x")]
    p = write(tmp_path, "p.csv", "\n".join(r.replace(",", sep) for r in rows) + "\n")
    (res,) = run([p], tmp_path / "out")
    assert res.status == "header" and res.rows_read == 0
    assert f"The header is one field holding {name}" in res.message


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_blank_line_right_after_the_header_is_a_blank_record(tmp_path: Path, end: str) -> None:
    """polars used to size the columns from the first data line: a blank one failed the read."""
    p = write(tmp_path, "p.csv", end.join([HEADER, "", ROW.format(n=1, d="x")]) + end)
    (res,) = run([p], tmp_path / "out")
    assert (res.status, res.rows_read, res.rows_valid, res.excluded) == (
        "validated",
        2,
        1,
        {"blank_line": 1},
    )


@pytest.mark.parametrize("fast_lane", [True, False])
def test_quoted_fields_longer_than_the_csv_modules_limit(tmp_path: Path, fast_lane: bool) -> None:
    """Python's csv module refuses fields over 128 KB by default; records are split with it
    (multi-line records, doubtful lines): a long field is data, not a crash."""
    long_lines = '"' + "B\n" * 70_000 + '"'
    long_doubtful = '"' + "C" * 200_000 + '"'
    rows = [
        HEADER,
        ROW.format(n=1, d=long_lines),
        ROW.format(n=2, d="x"),
        ROW.format(n=3, d=long_doubtful).replace(",true,", ",maybe,"),
    ]
    p = write(tmp_path, "p.csv", "\n".join(rows) + "\n")
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert (res.rows_read, res.rows_valid, res.rows_rejected) == (3, 2, 1)
    # the header, 70,001 lines of record 1, record 2: record 3 starts on line 70,004
    assert triples(res.rejects_path) == [("70004", "Captured", "bool_format")]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("utf-16", "not valid utf-16 (UTF-16 stream does not start with BOM)"),
        ("rot13", "unknown encoding"),
    ],
)
def test_a_declared_encoding_that_cannot_read_the_file_is_named(
    tmp_path: Path, encoding: str, says: str
) -> None:
    p = write(tmp_path, "p.csv", HEADER + "\n" + ROW.format(n=1, d="x") + "\n")
    (res,) = run([p], tmp_path / "out", encoding=encoding)
    assert res.status == "unreadable" and says in res.message


@pytest.mark.parametrize("fast_lane", [True, False])
def test_damaged_quotes_reject_their_record_only(tmp_path: Path, fast_lane: bool) -> None:
    """A quote that opens no quoted value (inch marks in an unquoted value) used to open a
    record running to the next quote: every row after it was swallowed into one 'truncated'
    reject, and two of them made polars' reader fail. Text after a closing quote made polars
    fail too. Each now rejects its own record (`malformed_quotes`, raw text whole); quotes
    inside an unquoted value that pair up stay text, and real multi-line records are kept."""
    rows = [
        HEADER,
        ROW.format(n=1, d='24" monitor'),  # line 2: odd, opens nothing
        ROW.format(n=2, d="x"),
        ROW.format(n=3, d='"Order 3"  '),  # line 4: spaces after the closing quote
        ROW.format(n=4, d='"Order 4"x'),  # line 5: text after the closing quote
        ROW.format(n=5, d='Order "5" ok'),  # line 6: an even pair inside an unquoted value: text
        ROW.format(n=6, d='"two\nlines"'),  # lines 7-8: a real multi-line record
        ROW.format(n=7, d='"bad\nclose"x'),  # lines 9-10: closes, then text
        ROW.format(n=8, d='27" screen'),  # line 11: another odd one
        ROW.format(n=9, d="y"),
    ]
    p = write(tmp_path, "p.csv", "\n".join(rows) + "\n")
    (res,) = run([p], tmp_path / "out", fast_lane=fast_lane)
    assert triples(res.rejects_path) == [  # type: ignore[arg-type]
        ("2", "", "malformed_quotes"),
        ("4", "", "malformed_quotes"),
        ("5", "", "malformed_quotes"),
        ("9", "", "malformed_quotes"),
        ("11", "", "malformed_quotes"),
    ]
    assert (res.rows_read, res.rows_valid, res.rows_rejected) == (9, 4, 5)
    valid = pl.read_csv(res.valid_path, infer_schema=False).sort("id")  # type: ignore[arg-type]
    assert valid["id"].to_list() == ["ch_2", "ch_5", "ch_6", "ch_9"]
    assert valid["description"].to_list() == ["x", 'Order "5" ok', "two\nlines", "y"]
    raw = pl.read_csv(res.rejects_path, infer_schema=False)["raw_line"].to_list()  # type: ignore[arg-type]
    assert raw == [rows[1], rows[3], rows[4], rows[7], rows[8]]


def test_a_complete_last_line_without_a_line_end_is_checked_like_any_other(
    tmp_path: Path,
) -> None:
    """Only a last record that is cut short is reported as cut off; one that is whole but
    has no line end gets the problem it has (here a NUL byte)."""
    rows = [HEADER, ROW.format(n=1, d="x"), ROW.format(n=2, d="a\x00b")]
    p = write(tmp_path, "p.csv", "\n".join(rows))
    (res,) = run([p], tmp_path / "out")
    assert triples(res.rejects_path) == [("3", "", "nul_byte")]  # type: ignore[arg-type]
    assert (res.rows_read, res.rows_valid) == (2, 1)


def test_a_file_mixing_utf8_and_windows_1252_is_not_read_as_either(tmp_path: Path) -> None:
    """Read as Windows-1252, its UTF-8 rows would ship garbled ('CafÃ©'); read as UTF-8, the
    others fail: the file is unreadable, naming a line of each, unless an encoding is given."""
    utf8_part = (HEADER + "\n" + ROW.format(n=1, d="Café") + "\n").encode("utf-8")
    cp1252_part = (ROW.format(n=2, d="Crème brûlée") + "\n").encode("cp1252")
    p = tmp_path / "p.csv"
    p.write_bytes(utf8_part + cp1252_part)
    (res,) = run([p], tmp_path / "out")
    assert res.status == "unreadable" and "mixed encodings" in res.message
    assert "line 3 is not UTF-8, but line 2 holds UTF-8 text" in res.message
    (forced,) = run([p], tmp_path / "forced", encoding="windows-1252")
    assert (forced.status, forced.rows_valid) == ("validated", 2)


def test_windows_1252_text_is_not_taken_for_mixed(tmp_path: Path) -> None:
    text = (
        HEADER
        + "\n"
        + "\n".join(
            ROW.format(n=i, d=d) for i, d in enumerate(["São Paulo", "Crème", "Ñandú", "Åse Øst"])
        )
    )
    p = write(tmp_path, "p.csv", text + "\n", encoding="cp1252")
    (res,) = run([p], tmp_path / "out")
    assert (res.status, res.encoding, res.rows_valid) == ("validated", "windows-1252", 4)


def test_utf16_without_a_byte_order_mark_gets_a_hint(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_bytes((HEADER + "\n" + ROW.format(n=1, d="x") + "\n").encode("utf-16-le"))
    (res,) = run([p], tmp_path / "out")
    assert res.status == "header" and "looks like UTF-16 without a byte-order mark" in res.message
    (given,) = run([p], tmp_path / "given", encoding="utf-16-le")
    assert (given.status, given.rows_valid) == ("validated", 1)


@pytest.mark.parametrize("tail", ['"', '"y'])
def test_a_header_over_two_lines_fails_the_header_check(tmp_path: Path, tail: str) -> None:
    """A quoted column name with a line break made the record count disagree with the reader
    (an InvariantError); such a header is now a header failure that says so."""
    text = HEADER + ',"note\nx' + tail + "\n" + ROW.format(n=1, d="x") + ",n\n"
    p = write(tmp_path, "p.csv", text)
    (res,) = run([p], tmp_path / "out")
    assert res.status == "header" and "the header spans lines 1-2" in res.message


def test_header_only_file(tmp_path: Path) -> None:
    p = write(tmp_path, "p.csv", HEADER + "\n")
    (res,) = run([p], tmp_path / "out")
    assert (res.status, res.rows_read, res.rows_valid) == ("validated", 0, 0)


def test_fixture_bytes_are_what_the_tests_say() -> None:
    raw = (FIXTURES / "stripe_payments" / "default_defects.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and not raw.endswith(b"\n")


def test_structure_is_the_same_whichever_way_kept_lines_are_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The structure pass copies the lines it keeps out of each streamed batch, through Python
    (a few) or polars (many): either way, over several batches, the same records, problems,
    doubtful lines and identity hashes come out."""
    from backfill.validate import structure

    lines = ["id,Amount,Note"]
    for i in range(30_000):
        if i % 997 == 0:
            lines.append(f"ch_{i},1.00,a,extra")  # ragged
        elif i % 1499 == 0:
            lines.append(f'ch_{i},1.00,"two\nlines"')  # multi-line record
        elif i % 2003 == 0:
            lines.append("")  # blank
        else:
            lines.append(f"ch_{i},1.00,plain")
    p = tmp_path / "g.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    gate = r"^ch_[0-9]+,[0-9.]+,[a-z]+$"

    def scan(nul_free: bool = True) -> structure.Structure:
        return structure.scan_structure(
            p,
            3,
            ends_with_newline=True,
            line_gate=gate,
            first_cell_keys=lambda e: e.hash(seed=0),
            nul_free=nul_free,
        )

    monkeypatch.setattr(structure, "_COPY_IN_PYTHON", 0)
    small = scan()
    monkeypatch.setattr(structure, "_COPY_IN_PYTHON", 10**9)
    whole = scan()
    # A file that may hold a NUL byte is read line by line (scan_lines), not as a CSV with
    # NUL as its separator: on a file without one, the same structure either way.
    by_lines = scan(nul_free=False)
    for other in (whole, by_lines):
        assert small.n_records == other.n_records == 30_000
        assert small.problems == other.problems and len(small.problems) == 31
        assert small.blank_recs == other.blank_recs and small.doubtful_recs == other.doubtful_recs
        assert small.multiline.equals(other.multiline) and small.multiline.height == 20
        assert small.key_hashes is not None and other.key_hashes is not None
        assert small.key_hashes.sort().equals(other.key_hashes.sort())
    assert len(small.blank_recs) > 0
