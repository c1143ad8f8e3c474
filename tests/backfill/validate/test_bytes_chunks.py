"""The bytes pass reads in fixed-size chunks and skips decoding pure-ASCII chunks: a multi-byte
character or a CRLF cut by a chunk boundary, and a bad byte in a late chunk, are still seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill.validate import encoding
from backfill.validate.encoding import EncodingError, scan_bytes


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoding, "_CHUNK", 8)


def test_multibyte_character_across_a_chunk_boundary_is_utf8(
    tmp_path: Path, small_chunks: None
) -> None:
    p = tmp_path / "a.csv"
    # "é" (2 bytes) starts at byte 7: its second byte opens the next chunk, which is then ASCII.
    p.write_bytes("a,b\r\nxx\u00e9,yyyyyyyyyyy\r\nzz,w\n".encode())
    facts = scan_bytes(p)
    assert facts.encoding == "utf-8" and facts.first_bad_line is None
    # a chunk with an LF line end and no CR is not counted: mixed all the same
    assert (facts.lf, facts.crlf, facts.line_endings) == (None, 2, "mixed")


def test_bad_byte_in_a_late_ascii_looking_file_is_found(tmp_path: Path, small_chunks: None) -> None:
    p = tmp_path / "b.csv"
    p.write_bytes(b"a,b\n" + b"xxxxxxx,y\n" * 5 + b"caf\xe9,y\n" + b"zz,w\n")
    facts = scan_bytes(p)
    assert facts.encoding == "windows-1252"
    assert facts.first_bad_line == 7


def test_cut_multibyte_sequence_at_the_end_is_not_utf8(tmp_path: Path, small_chunks: None) -> None:
    p = tmp_path / "c.csv"
    p.write_bytes(b"a,b\nxxxxxxxxxxxx,\xc3")
    with pytest.raises(EncodingError):
        scan_bytes(p, "utf-8")
    assert scan_bytes(p).encoding != "utf-8"


def test_crlf_split_by_a_chunk_boundary_is_counted_once(tmp_path: Path, small_chunks: None) -> None:
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b,cd\r\nxx,y,zzz\r\n")  # the first CR is byte 7, its LF byte 8
    facts = scan_bytes(p)
    assert (facts.lf, facts.crlf, facts.line_endings) == (2, 2, "CRLF")


def test_newlines_are_counted_only_where_line_ends_need_telling_apart(
    tmp_path: Path, small_chunks: None
) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes(b"a,b\n" + b"xxxxxxx,y\n" * 5)
    facts = scan_bytes(p)
    assert (facts.lf, facts.crlf, facts.line_endings) == (None, 0, "LF")
    q = tmp_path / "f.csv"
    q.write_bytes(b"a,b\r\n" + b"xxxxxx,y\r\n" * 5)
    facts = scan_bytes(q)
    assert (facts.lf, facts.crlf, facts.line_endings) == (6, 6, "CRLF")
