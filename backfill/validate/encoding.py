"""Pass 1a: the bytes of a file: encoding, BOM, line endings, final newline.

The whole file is checked (not a sample), so a Windows-1252 byte at the end of a 1 GB export
is found; it is read in fixed-size chunks (memory flat), and chunks that are pure ASCII (most of
an export) are not decoded at all. A file that is not UTF-8 is transcoded to a UTF-8 copy only
when its encoding is detected (a UTF-16/32 byte-order mark, else Windows-1252/Latin-1) or given
with `--encoding`, and the report says so; nothing is replaced silently. A file whose lines end
in CR only is read through a copy with LF line ends (`cr_to_lf`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ByteFacts", "EncodingError", "cr_to_lf", "scan_bytes", "transcode_to_utf8"]

# 1 MB: a chunk read, checked with isascii and searched for CR while it is still in the CPU's
# cache (0.09 s for 1 GB; 16 MB chunks, each a fresh buffer: 0.18 s).
_CHUNK = 1024 * 1024
_BOM = codecs.BOM_UTF8
# Bytes Windows-1252 leaves undefined: seeing one means Latin-1 (ISO-8859-1) instead.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
# Encodings of which plain ASCII bytes are always a valid part: an ASCII chunk needs no decoding
# (`bytes.isascii` runs at memory speed; decoding builds a str of the whole chunk).
_ASCII_SUPERSETS = frozenset({"utf-8", "cp1252", "iso8859-1", "latin-1"})


class EncodingError(Exception):
    """The file cannot be decoded with the given or detected encoding."""


@dataclass
class ByteFacts:
    """What the bytes pass found."""

    size: int
    encoding: str
    """`utf-8`, or the source encoding of a transcoded file."""
    detected: bool
    """True when the encoding was detected rather than given."""
    bom: bool
    crlf: int
    """Line ends written as CRLF."""
    lf: int | None
    """All line ends (LF), CRLF included; None when not counted (LF-only parts of a file whose
    encoding keeps ASCII bytes: the structure pass counts the lines)."""
    ends_with_newline: bool
    cr: int = 0
    """CR bytes (counted in the chunks that hold one)."""
    first_bad_line: int | None = None
    """1-based physical line of the first byte that is not UTF-8 (when not UTF-8)."""
    first_bad_offset: int | None = None
    nul: bool = False
    """Whether the file holds a NUL byte (no export writes one: structure.py rejects its record)."""

    @property
    def line_endings(self) -> str:
        """`LF`, `CRLF`, `mixed`, `CR` (CR only: classic Mac OS, Excel's "CSV (Macintosh)"; the
        file is read through a copy with LF, `cr_to_lf`) or `none`."""
        if self.lf is None:  # parts with LF line ends only were not counted
            return "LF" if self.crlf == 0 else "mixed"
        if self.lf == 0:
            return "CR" if self.cr else "none"
        if self.crlf == self.lf:
            return "CRLF"
        return "LF" if self.crlf == 0 else "mixed"


_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _utf16_or_32(path: Path) -> str | None:
    """`utf-32` or `utf-16` when the file starts with that byte-order mark, else None."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(_UTF32_BOMS):
        return "utf-32"
    return "utf-16" if head.startswith(_UTF16_BOMS) else None


# A well-formed UTF-8 sequence of two to four bytes (no overlong forms, no surrogates). In a
# Windows-1252 or Latin-1 file such pairs are letters like 'Ã©' side by side: rare.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _first_utf8_sequence(path: Path) -> int | None:
    """Offset of the first multi-byte UTF-8 sequence in the file, or None (only read on the
    error path: a file with bytes that are not UTF-8)."""
    done = 0
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            data = tail + chunk  # a sequence cut by the chunk boundary is found whole
            if (m := _UTF8_SEQUENCE.search(data)) is not None:
                return done - len(tail) + m.start()
            tail = data[-3:]
            done += len(chunk)
    return None


def _newlines_before(path: Path, offset: int, newline: bytes = b"\n") -> int:
    """Line ends in the first `offset` bytes of the file (only on the error path)."""
    n = 0
    with path.open("rb") as fh:
        while offset > 0 and (chunk := fh.read(min(_CHUNK, offset))):
            n += chunk.count(newline)
            offset -= len(chunk)
    return n


def _text_encoding(name: str) -> str:
    """The codec name of a declared encoding that decodes bytes to text.

    Raises:
        LookupError: no such codec, or one that is not a text encoding (rot13, base64, ...).
    """
    info = codecs.lookup(name)
    if not getattr(info, "_is_text_encoding", True):
        raise LookupError(name)
    return info.name


def scan_bytes(path: Path, encoding: str | None = None) -> ByteFacts:
    """Read the file once in chunks: UTF-8 check, BOM, line-ending counts.

    Args:
        path: the CSV file.
        encoding: a declared source encoding; when set, the file is checked against it.

    Raises:
        EncodingError: the declared encoding does not decode the file.
    """
    declared = _text_encoding(encoding) if encoding else None
    # A UTF-16/32 byte-order mark decides the encoding (Excel's "Unicode Text" is UTF-16).
    sniffed = None if declared else _utf16_or_32(path)
    strict = declared or sniffed  # an encoding the file must decode with, else an error
    check = strict or "utf-8"
    dec = codecs.getincrementaldecoder(check)(errors="strict")
    ascii_ok = codecs.lookup(check).name in _ASCII_SUPERSETS
    size = crlf = lf = 0
    # bytes.count costs about 2 cycles a byte, single-threaded: newlines are only counted where
    # line ends must be told apart (chunks with a CR) or the encoding is not ASCII-compatible.
    count_here = not ascii_ok
    uncounted_lf = False
    bom = False
    last = b""
    prev_tail = b""
    bad_off: int | None = None
    bad_line: int | None = None
    seen = set()
    nul = False
    cr = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if size == 0:
                bom = chunk.startswith(_BOM)
            # An ASCII chunk with no multi-byte sequence pending from the last one is valid.
            if bad_off is None and not (ascii_ok and not dec.getstate()[0] and chunk.isascii()):
                try:
                    dec.decode(chunk, final=False)
                except UnicodeDecodeError as exc:
                    bad_off = size + exc.start
                    before = lf if count_here else _newlines_before(path, size)
                    bad_line = before + chunk.count(b"\n", 0, exc.start) + 1
                    if strict:
                        raise EncodingError(
                            f"{path}: not valid {strict} at byte {bad_off} (line {bad_line})"
                            + (" despite its byte-order mark" if sniffed else "")
                        ) from None
                except UnicodeError as exc:  # the codec's own complaint: UTF-16 without a BOM
                    raise EncodingError(f"{path}: not valid {check} ({exc})") from None
            if bad_off is not None and not declared:
                seen.update(b for b in _CP1252_UNDEFINED if b in chunk)
            nul = nul or b"\x00" in chunk  # a search too: 3 ms a 0.4 GB file
            has_cr = b"\r" in chunk  # a search: much faster than a count
            # (after a chunk ending in CR, the LF of a CRLF cut by the boundary opens this one)
            if count_here or has_cr or prev_tail == b"\r":
                lf += chunk.count(b"\n")
            elif not uncounted_lf:
                uncounted_lf = b"\n" in chunk
            if has_cr:
                crlf += chunk.count(b"\r\n")
                cr += chunk.count(b"\r") if ascii_ok else 0  # (0x0D is CR only there)
            crlf += prev_tail == b"\r" and chunk[:1] == b"\n"
            prev_tail = chunk[-1:]
            last = chunk[-1:]
            size += len(chunk)
    if bad_off is None:
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            bad_off = size
            bad_line = (lf if count_here else _newlines_before(path, size)) + 1
            if strict:
                raise EncodingError(
                    f"{path}: truncated {strict} sequence at the end"
                    + (" despite its byte-order mark" if sniffed else "")
                ) from None
    enc = strict or "utf-8"
    if bad_off is not None and not declared:
        enc = "latin-1" if seen else "windows-1252"
        newline = b"\r" if cr and lf == 0 and not uncounted_lf else b"\n"  # CR-only line ends
        if newline == b"\r":
            bad_line = _newlines_before(path, bad_off, newline) + 1
        if (at := _first_utf8_sequence(path)) is not None:
            utf8_line = _newlines_before(path, at, newline) + 1
            raise EncodingError(
                f"{path}: mixed encodings: line {bad_line} is not UTF-8, but line {utf8_line} "
                "holds UTF-8 text (an export appended to another?); read as one encoding, one "
                "part would come out garbled. Re-export it, or pass --encoding windows-1252 to "
                "read it all as Windows-1252 (its UTF-8 text then reads as 'CafÃ©')"
            )
    return ByteFacts(
        size=size,
        encoding=codecs.lookup(enc).name if enc != "windows-1252" else "windows-1252",
        detected=declared is None,
        bom=bom,
        crlf=crlf,
        cr=cr,
        lf=None if uncounted_lf else lf,
        # (a file with CR line ends only ends with a line end when it ends with a CR)
        ends_with_newline=last == b"\n" or (last == b"\r" and lf == 0 and not uncounted_lf),
        first_bad_line=bad_line,
        first_bad_offset=bad_off,
        nul=nul,
    )


def cr_to_lf(src: Path, dst: Path) -> None:
    """Write a copy of `src` with every CR made an LF: a file whose lines end in CR only is
    read by polars as one line. Byte for byte otherwise (in UTF-8, and in the single-byte
    encodings detected here, the byte 0x0D is always CR)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk.replace(b"\r", b"\n"))


def transcode_to_utf8(src: Path, dst: Path, encoding: str) -> None:
    """Write a UTF-8 copy of `src` decoded from `encoding` (strict: never replaces bytes)."""
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(dec.decode(chunk).encode("utf-8"))
        fout.write(dec.decode(b"", final=True).encode("utf-8"))
