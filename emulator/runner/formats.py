"""Read the bytes of one source file into input records, in the format a source connection names.

Delimited (CSV): `columnDelimiter`, `encoding`, optional `quoteChar`/`escapeChar`, a header row,
quoted fields with embedded newlines. JSON: one object per line. Files may be compressed
(`compressionType` gzip, bzip2, deflate). Every input row ends up either as an `InputRecord` or as
a `RowError` naming its file, physical line, a code and the raw text; never silently dropped.
Blank lines are not records.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from emulator.runner.types import RowError, SourceError

__all__ = ["FormatOptions", "InputRecord", "ParsedFile", "format_options", "parse_file"]

Format = Literal["delimited", "json"]

_ASCII_COMPATIBLE: Final = frozenset({"utf-8", "iso8859-1", "cp1252", "ascii", "latin-1"})
_LINE_END: Final = re.compile(rb"(?<=\n)")


@dataclass(frozen=True)
class FormatOptions:
    """How to read a source connection's files."""

    format: Format
    delimiter: str = ","
    encoding: str = "utf-8"
    compression: str | None = None
    quotechar: str = '"'
    escapechar: str | None = None


@dataclass
class InputRecord:
    """One input row: where it came from and its values (flat for CSV, nested for JSON)."""

    file: str | None
    line: int | None
    values: dict[str, Any]
    raw: str


@dataclass
class ParsedFile:
    """The rows of one file, each a record or an error."""

    records: list[InputRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    header: list[str] | None = None
    """A delimited file's column names (None for JSON lines, or a file with no header row)."""


def format_options(source_connection: Mapping[str, Any]) -> FormatOptions:
    """Read `data.format` and its properties (also the older `data.columnDelimiter` form).

    Raises:
        SourceError: a format, encoding, delimiter or compression the emulator cannot read.
    """
    data = source_connection.get("data") or {}
    props: dict[str, Any] = {**(data.get("properties") or {})}
    for key in ("columnDelimiter", "encoding", "compressionType", "quoteChar", "escapeChar"):
        if key not in props and data.get(key) is not None:
            props[key] = data[key]
    fmt = str(data.get("format") or "delimited").lower()
    if fmt not in ("delimited", "json"):
        raise SourceError(
            f"data.format {data.get('format')!r} is not supported by the emulator's runs "
            "(delimited and json are)"
        )
    delimiter = _one_char(props.get("columnDelimiter", ","), "columnDelimiter")
    quote = _one_char(props.get("quoteChar", '"'), "quoteChar")
    escape = props.get("escapeChar")
    encoding = str(props.get("encoding") or "UTF-8")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"encoding {encoding!r} is not known") from None
    compression = props.get("compressionType")
    compression = str(compression).lower() if compression not in (None, "", "none") else None
    if compression not in (None, "gzip", "bzip2", "deflate"):
        raise SourceError(
            f"compressionType {props.get('compressionType')!r} is not supported by the "
            "emulator (gzip, bzip2 and deflate are)"
        )
    return FormatOptions(
        format="json" if fmt == "json" else "delimited",
        delimiter=delimiter,
        encoding=codec,
        compression=compression,
        quotechar=quote,
        escapechar=_one_char(escape, "escapeChar") if escape else None,
    )


def _one_char(value: Any, name: str) -> str:
    text = str(value)
    text = {"\\t": "\t", "tab": "\t", "\\u0009": "\t"}.get(text.lower(), text)
    if len(text) != 1:
        raise SourceError(f"{name} must be a single character, got {value!r}")
    return text


def parse_file(data: bytes, file: str, opts: FormatOptions) -> ParsedFile:
    """Decompress and parse one file.

    Raises:
        SourceError: the file cannot be read at all (corrupt compression, unusable header).
    """
    raw = _decompress(data, file, opts.compression)
    lines, bad = _decode_lines(raw, file, opts.encoding)
    if opts.format == "json":
        return _parse_json_lines(lines, bad, file, opts.encoding)
    return _parse_delimited(lines, bad, file, opts)


def _decompress(data: bytes, file: str, compression: str | None) -> bytes:
    try:
        if compression == "gzip":
            return gzip.decompress(data)
        if compression == "bzip2":
            return bz2.decompress(data)
        if compression == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:
                return zlib.decompress(data, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise SourceError(f"{file}: cannot decompress as {compression}: {exc}") from None
    return data


def _decode_lines(raw: bytes, file: str, encoding: str) -> tuple[list[str], set[int]]:
    """Physical lines (with their ends) and the 1-based numbers of lines that do not decode."""
    if codecs.lookup(encoding).name not in _ASCII_COMPATIBLE:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise SourceError(f"{file}: not valid {encoding}: {exc}") from None
        return text.splitlines(keepends=True), set()
    lines: list[str] = []
    bad: set[int] = set()
    for number, chunk in enumerate(_LINE_END.split(raw), start=1):
        if not chunk:
            continue
        try:
            lines.append(chunk.decode(encoding))
        except UnicodeDecodeError:
            bad.add(number)
            lines.append(chunk.decode(encoding, errors="replace"))
    if lines and encoding == "utf-8" and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines, bad


def _raw(lines: list[str], start: int, end: int) -> str:
    return "".join(lines[start - 1 : end]).rstrip("\r\n")


def _parse_delimited(lines: list[str], bad: set[int], file: str, opts: FormatOptions) -> ParsedFile:
    out = ParsedFile()
    reader = csv.reader(
        io.StringIO("".join(lines), newline=""),
        delimiter=opts.delimiter,
        quotechar=opts.quotechar,
        escapechar=opts.escapechar,
        strict=True,
    )
    header: list[str] | None = None
    previous = 0
    while True:
        try:
            row = next(reader)
            error = None
        except StopIteration:
            break
        except csv.Error as exc:
            row, error = None, str(exc)
        start, end = previous + 1, reader.line_num
        previous = end
        if row == [] and error is None:
            continue
        raw = _raw(lines, start, end)
        if header is None:
            if error is not None or row is None:
                raise SourceError(f"{file}: line {start}: cannot read the header row: {error}")
            header = out.header = _check_header(row, file)
            continue
        if error is not None or row is None:
            out.errors.append(RowError(file, start, "CSV-SYNTAX", error or "unreadable", raw))
        elif any(n in bad for n in range(start, end + 1)):
            out.errors.append(
                RowError(file, start, "CSV-ENCODING", f"not valid {opts.encoding}", raw)
            )
        elif len(row) != len(header):
            out.errors.append(
                RowError(
                    file,
                    start,
                    "CSV-FIELD-COUNT",
                    f"expected {len(header)} fields (as the header), found {len(row)}",
                    raw,
                )
            )
        else:
            out.records.append(InputRecord(file, start, dict(zip(header, row, strict=True)), raw))
    return out


def _check_header(row: list[str], file: str) -> list[str]:
    names = [name.strip() for name in row]
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise SourceError(f"{file}: line 1: header column {i} has no name")
        if name in seen:
            raise SourceError(f"{file}: line 1: header repeats column {name!r}")
        seen.add(name)
    return names


def _parse_json_lines(lines: list[str], bad: set[int], file: str, encoding: str) -> ParsedFile:
    out = ParsedFile()
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if number in bad:
            out.errors.append(
                RowError(file, number, "JSON-ENCODING", f"not valid {encoding}", text)
            )
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            out.errors.append(
                RowError(file, number, "JSON-SYNTAX", f"{exc.msg} at column {exc.colno}", text)
            )
            continue
        except RecursionError:
            out.errors.append(RowError(file, number, "JSON-SYNTAX", "nested too deeply", text))
            continue
        if not isinstance(value, dict):
            out.errors.append(
                RowError(
                    file,
                    number,
                    "JSON-NOT-OBJECT",
                    f"a line must hold one JSON object, found {type(value).__name__}",
                    text,
                )
            )
            continue
        out.records.append(InputRecord(file, number, value, text))
    return out
