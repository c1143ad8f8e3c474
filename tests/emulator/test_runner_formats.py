"""Parsing source files: delimited and JSON lines, every row a record or a row error."""

from __future__ import annotations

import bz2
import gzip
import textwrap

import pytest

from emulator.runner.formats import FormatOptions, format_options, parse_file
from emulator.runner.types import SourceError

CSV = FormatOptions("delimited")


def _csv(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode()


def test_header_then_rows_keep_their_physical_lines():
    parsed = parse_file(
        _csv("""
        id,name,points
        1,Ana,10
        2,"Ben, Jr.",20
        3,"multi
        line",30
        4,Dee,40
        """),
        "f.csv",
        CSV,
    )
    assert [(r.line, r.values["id"]) for r in parsed.records] == [
        (2, "1"),
        (3, "2"),
        (4, "3"),
        (6, "4"),
    ]
    assert parsed.records[1].values["name"] == "Ben, Jr."
    assert parsed.records[2].values["name"] == "multi\nline"
    assert parsed.errors == []


def test_wrong_field_count_and_bad_quotes_are_row_errors_with_line_and_raw():
    parsed = parse_file(
        _csv("""
        id,name
        1,Ana
        2,Ben,extra
        3,"Cai"x
        4,Dee
        """),
        "f.csv",
        CSV,
    )
    assert [r.values["id"] for r in parsed.records] == ["1", "4"]
    assert [(e.line, e.code, e.raw, e.file) for e in parsed.errors] == [
        (3, "CSV-FIELD-COUNT", "2,Ben,extra", "f.csv"),
        (4, "CSV-SYNTAX", '3,"Cai"x', "f.csv"),
    ]
    assert "expected 2 fields" in parsed.errors[0].message


def test_unterminated_quote_at_end_is_an_error_not_a_loss():
    parsed = parse_file(b'id,name\n1,Ana\n2,"Ben\n3,Cai\n', "f.csv", CSV)
    assert len(parsed.records) == 1
    assert [(e.line, e.code) for e in parsed.errors] == [(3, "CSV-SYNTAX")]


def test_blank_lines_are_not_records_and_crlf_is_read():
    parsed = parse_file(b"id,name\r\n1,Ana\r\n\r\n2,Ben\r\n", "f.csv", CSV)
    assert [(r.line, r.values) for r in parsed.records] == [
        (2, {"id": "1", "name": "Ana"}),
        (4, {"id": "2", "name": "Ben"}),
    ]


def test_latin1_and_semicolon_from_source_connection_properties():
    opts = format_options(
        {
            "data": {
                "format": "delimited",
                "properties": {"columnDelimiter": ";", "encoding": "ISO-8859-1"},
            }
        }
    )
    parsed = parse_file("id;city\n1;Zürich\n2;Orléans\n".encode("latin-1"), "f.csv", opts)
    assert [r.values["city"] for r in parsed.records] == ["Zürich", "Orléans"]


def test_undecodable_line_is_a_row_error_in_utf8():
    data = b"id,city\n1,Z\xfcrich\n2,Bern\n"
    parsed = parse_file(data, "f.csv", CSV)
    assert [r.values["city"] for r in parsed.records] == ["Bern"]
    assert [(e.line, e.code) for e in parsed.errors] == [(2, "CSV-ENCODING")]


def test_utf8_bom_is_not_part_of_the_first_column():
    parsed = parse_file(b"\xef\xbb\xbfid,name\n1,Ana\n", "f.csv", CSV)
    assert parsed.records[0].values == {"id": "1", "name": "Ana"}


def test_gzip_and_bzip2_when_compression_type_says_so():
    raw = b"id,name\n1,Ana\n2,Ben\n"
    gz = format_options(
        {"data": {"format": "delimited", "properties": {"compressionType": "gzip"}}}
    )
    assert len(parse_file(gzip.compress(raw), "f.csv.gz", gz).records) == 2
    bz = format_options(
        {"data": {"format": "delimited", "properties": {"compressionType": "bzip2"}}}
    )
    assert len(parse_file(bz2.compress(raw), "f.csv.bz2", bz).records) == 2
    with pytest.raises(SourceError, match=r"f\.csv: cannot decompress as gzip"):
        parse_file(raw, "f.csv", gz)


def test_older_form_with_column_delimiter_under_data():
    opts = format_options({"data": {"format": "delimited", "columnDelimiter": "\t"}})
    assert opts.delimiter == "\t"


def test_json_lines_bad_json_and_non_objects_are_row_errors():
    data = b'{"id": 1}\n\n{"id": 2,}\n[1, 2]\n{"id": 3, "nested": {"a": [1]}}\n'
    parsed = parse_file(data, "f.json", FormatOptions("json"))
    assert [(r.line, r.values["id"]) for r in parsed.records] == [(1, 1), (5, 3)]
    assert [(e.line, e.code) for e in parsed.errors] == [(3, "JSON-SYNTAX"), (4, "JSON-NOT-OBJECT")]
    assert parsed.errors[0].raw == '{"id": 2,}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "parquet"}, "parquet"),
        ({"format": "delimited", "properties": {"columnDelimiter": ";;"}}, "single character"),
        ({"format": "delimited", "properties": {"encoding": "klingon"}}, "klingon"),
        ({"format": "delimited", "properties": {"compressionType": "tar"}}, "tar"),
    ],
)
def test_unreadable_options_are_refused_clearly(data, message):
    with pytest.raises(SourceError, match=message):
        format_options({"data": data})


def test_header_with_repeated_column_is_refused():
    with pytest.raises(SourceError, match="line 1: header repeats column 'id'"):
        parse_file(b"id,id\n1,2\n", "f.csv", CSV)


def test_json_lines_too_deep_or_undecodable_are_row_errors():
    deep = b"[" * 5000 + b"]" * 5000
    data = b'{"id": 1}\n' + deep + b'\n{"name": "Z\xfcrich"}\n'
    parsed = parse_file(data, "f.json", FormatOptions("json"))
    assert [r.line for r in parsed.records] == [1]
    assert [(e.line, e.code, e.message) for e in parsed.errors] == [
        (2, "JSON-SYNTAX", "nested too deeply"),
        (3, "JSON-ENCODING", "not valid utf-8"),
    ]
