"""Pass 1b: records and fields, per physical line, before any value is looked at.

polars cannot say which line had too many or too few fields (it errors, or pads/truncates with
`truncate_ragged_lines`), so this pass reads the file as physical lines (no quoting, one text
column: `physical_lines`), counts quotes and separators per line with polars expressions, and
works out in memory, on small integer columns only, where each record starts (a record continues while a
quote is open) and how many fields it has. Records that span lines (newlines inside quotes) are
few; their text is fetched in a second, filtered read and split with the `csv` module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

__all__ = [
    "Structure",
    "StructureProblem",
    "blank_records",
    "line_numbers",
    "physical_lines",
    "read_header",
    "records",
    "scan_structure",
]

# The csv module refuses a field over 128 KB by default; a record's text is split with it
# (multi-line records, doubtful lines), and a long quoted field is data, not an error.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))

_MAX_DOUBTFUL_KEYS = 20_000
_COPY_IN_PYTHON = 64
_NUL = "\x00"
_QUOTED = r'"[^"]*"'
# The shape of a line's quotes. polars splits records on quote parity (a record goes on while
# an odd number of quotes is open), and reads a quote inside an unquoted value as text; a line
# on which that and the CSV grammar disagree is damaged (`malformed_quotes`) and never reaches
# polars (engine.py reads a copy with such records blanked).
_Q_FIELD = r'"(?:[^"]|"")*"'  # a quoted value, closed
_U_FIELD = r'(?:[^",][^,]*)?'  # an unquoted value (a quote after its first character is text)
_FIELD = f"(?:{_Q_FIELD}|{_U_FIELD})"
_WELL_FORMED = f"^{_FIELD}(?:,{_FIELD})*$"
_OPENS = f'^(?:{_FIELD},)*"(?:[^"]|"")*$'  # fields, then a quoted value left open
_CLOSES = f'^(?:[^"]|"")*"(?:,{_FIELD})*$'  # the rest of an open value, then fields
_MALFORMED = {
    "stray": "an odd number of quotes that opens no quoted value (a quote inside an unquoted "
    'value: quote the value and double the quote, "24"" monitor"); the record is read as this '
    "line alone",
    "after": 'text after a quoted value\'s closing quote (as in "Order 1"x)',
    "span": "a record over several lines whose quoted value closes before the end of its field",
}


@dataclass(frozen=True)
class StructureProblem:
    """A record that cannot be split into the header's fields."""

    rec: int
    """0-based data record index (the header is not counted)."""
    line: int
    """1-based physical line where the record starts."""
    rule: str
    message: str


@dataclass
class Structure:
    """What the structure pass found in one file."""

    n_records: int
    """Data records (blank lines included; the header excluded)."""
    header_lines: int = 1
    """Physical lines of the header: more than one (a quoted name with a line break) is not
    read, and nothing else is worked out (engine.py fails the header check)."""
    problems: list[StructureProblem] = field(default_factory=list)
    blank_recs: list[int] = field(default_factory=list)
    multiline: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"rec": pl.Int64, "line": pl.Int64, "n_lines": pl.Int64}
        )
    )
    """Data records spanning several lines: rec, start line, number of lines."""
    raw_multiline: dict[int, str] = field(default_factory=dict)
    raw_lines: dict[int, str] = field(default_factory=dict)
    """Raw text of the records in `problems` (they cannot be re-read as fields)."""
    unterminated_tail: bool = False
    """The last record opens a quote that never closes (the reader must stop before it)."""
    doubtful_recs: list[int] | None = None
    key_hashes: pl.Series | None = None
    """With `first_cell_keys`: the 64-bit hash of the first cell of every record whose line
    matched the gate (the identity, when it is the first column)."""
    doubtful_text: list[tuple[int, str]] = field(default_factory=list)
    """With `first_cell_keys`: (record, text as read) of every doubtful record."""
    malformed_lines: list[tuple[int, int]] = field(default_factory=list)
    """First and last line of every record rejected as `malformed_quotes`: the reader must not
    see them (`blank_records`)."""
    """Records whose line did not match the line gate (gate.line_pattern), when one was given:
    every other record is one plain line whose gated cells have their form."""

    @property
    def readable_records(self) -> int:
        """Records the polars reader may read (all but an unterminated tail)."""
        return self.n_records - (1 if self.unterminated_tail else 0)


def read_header(path: Path) -> list[str]:
    """The first record's fields, as written (BOM and spaces not yet stripped)."""
    with path.open(encoding="utf-8", newline="") as fh:
        row = next(csv.reader(fh), None)
    return row or []


def records(path: Path, n_fields: int, n_rows: int) -> pl.LazyFrame:
    """The first `n_rows` data records of a CSV file as text columns `c0`.. (`n_fields` of them,
    ragged records padded or cut) with their 0-based index `__rec`.

    The header line is read as the header (its names replaced by position): skipping it and
    passing a schema instead made polars size the columns from the first data line, so a blank
    line right after the header failed the whole read."""
    return pl.scan_csv(
        path,
        has_header=True,
        infer_schema=False,
        new_columns=[f"c{i}" for i in range(n_fields)],
        truncate_ragged_lines=True,
        extra_columns="ignore",
        n_rows=n_rows,
    ).with_row_index("__rec")


def blank_records(src: Path, dst: Path, ranges: list[tuple[int, int]]) -> None:
    """Copy `src` to `dst` with each record of `ranges` (first and last line, 1-based) made one
    empty line: the same records in the same order, none of them with damaged quotes for the
    reader to stumble on (its parallel reader splits records on quote parity)."""
    starts = {a: b for a, b in ranges}
    skip_to = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        for ln, raw in enumerate(fin, start=1):
            if ln <= skip_to:
                continue
            if ln in starts:
                skip_to = starts[ln]
                fout.write(b"\n")
                continue
            fout.write(raw)


def physical_lines(path: Path, *, nul_free: bool = False) -> pl.LazyFrame:
    """The file as one text column `line`, one row per physical line (CR of a CRLF stripped,
    a blank line empty or null).

    `nul_free`: the bytes pass found no NUL byte in the file, so it is read as a one-column CSV
    with NUL as the separator and no quoting (6 % faster than `scan_lines` on 2M lines); that
    read would cut a line at a NUL byte, so a file holding one is read with `scan_lines`,
    which keeps every byte of a line."""
    if not nul_free:
        return pl.scan_lines(path, name="line")
    return pl.scan_csv(
        path,
        has_header=False,
        separator=_NUL,
        quote_char=None,
        schema={"line": pl.String},
        truncate_ragged_lines=True,
        extra_columns="ignore",
    )


def scan_structure(
    path: Path,
    n_fields: int,
    *,
    ends_with_newline: bool,
    line_gate: str | None = None,
    first_cell_keys: Callable[[pl.Expr], pl.Expr] | None = None,
    nul_free: bool = False,
) -> Structure:
    """Find every record's start line and field count; report the ones that do not fit.

    The streaming query hands over its lines batch by batch; only lines that may matter are
    kept (memory stays flat): lines with an odd number of quotes (they open or close a
    multi-line record), blank lines, and lines whose field count differs from the header's. Quote parity only changes on odd-quote lines,
    so consecutive pairs of them delimit the multi-line records; an unpaired last one means the
    file ends inside a quoted value.

    Args:
        path: a UTF-8 CSV file.
        n_fields: number of header fields.
        ends_with_newline: whether the last byte is a newline (else the last line may be cut).
        line_gate: a pattern a plain, well-formed line matches (gate.line_pattern). Lines that
            match it are done with (exactly `n_fields` fields, an even number of quotes, not blank): quotes and
            separators are only counted on the others, and their records are the doubtful ones.
        first_cell_keys: with a line gate whose first part never matches a quote or a comma,
            also hash (with this function: the main pass's) the first cell of every line that
            matched it (the duplicates pass then
            needs no read of its own, see engine.py); a line whose first cell is empty is
            counted as doubtful.
        nul_free: the bytes pass found no NUL byte in the file (`physical_lines`).
    """
    line = pl.col("line")
    q = line.str.count_matches('"', literal=True).fill_null(0)
    # Separators outside quotes: quoted segments are cut out first (on lines with quotes).
    fields = (
        pl.when(q > 0)
        .then(line.str.replace_all(_QUOTED, "").str.count_matches(",", literal=True))
        .otherwise(line.str.count_matches(",", literal=True))
        .fill_null(0)
        + 1
    )
    # One scan, in batches: each batch is counted (the number of lines, without the bytes
    # pass having to count newlines) and only its lines that missed the gate (all of them
    # without a gate) are looked at: quotes and separators are counted on those only.
    missed = (
        ~line.str.contains(line_gate).fill_null(False) if line_gate is not None else pl.lit(True)
    )
    with_keys = first_cell_keys is not None and line_gate is not None
    # Each derived column in a with_columns of its own: the streaming select would evaluate
    # a shared sub-expression (the gate regex) once per use.
    frame = physical_lines(path, nul_free=nul_free).with_row_index("ln", offset=1)
    keep = pl.col("keep")
    cols = [pl.col("ln").cast(pl.Int64), keep, line]
    if with_keys:
        # A line whose first cell is empty (a comma first) is kept too: its identity may
        # come from another column. Every line's first cell is hashed; the batch loop keeps
        # the hashes of the lines that are not kept (no when/then per line here).
        pos = pl.col("__pos")
        frame = frame.with_columns(keep=missed, __pos=line.str.find(",", literal=True))
        frame = frame.with_columns(keep=keep | (pos == 0).fill_null(False))
        cols.append(first_cell_keys(line.str.slice(0, pos)).alias("key"))  # type: ignore[misc]
    else:
        frame = frame.with_columns(keep=missed)
    batches = frame.select(*cols).collect_batches(engine="streaming")
    # Per batch (a few thousand lines) only direct Series calls: an eager frame operation
    # plans a query of its own, which cost more than the batch's lines (0.4 s a GB).
    n_lines = 0
    hashes: list[pl.Series] = []
    kept_ln: list[pl.Series] = []
    kept_text: list[pl.Series] = []
    for batch in batches:
        n_lines += batch.height
        keep = batch.get_column("keep")
        n_keep = keep.sum()
        if with_keys:
            keys = batch.get_column("key")
            hashes.append(keys.filter(~keep) if n_keep else keys)
        if not n_keep:
            continue
        kept_ln.append(batch.get_column("ln").filter(keep))
        text = batch.get_column("line").filter(keep)
        # Copied: a filtered view would keep the whole batch's text alive. A few lines go
        # through Python (cheap for a few), many through a polars copy.
        if n_keep <= _COPY_IN_PYTHON:
            kept_text.append(pl.Series("line", text.to_list(), dtype=pl.String))
        else:
            kept_text.append(text.to_frame().select(pl.col("line") + pl.lit("")).to_series())
    schema = {
        "ln": pl.Int64,
        "q": pl.UInt32,
        "odd": pl.Boolean,
        "fields": pl.Int64,
        "blank": pl.Boolean,
        "nul": pl.Boolean,
        "text": pl.String,
    }
    if kept_ln:
        found = pl.DataFrame(
            {"ln": pl.concat(kept_ln), "line": pl.concat(kept_text)},
            schema={"ln": pl.Int64, "line": pl.String},
        ).select(
            "ln",
            q=q,
            odd=q % 2 == 1,
            fields=fields.cast(pl.Int64),
            blank=line.is_null() | (line == ""),
            nul=line.str.contains(_NUL, literal=True).fill_null(False),
            text=line,
        )
    else:
        found = pl.DataFrame(schema=schema)
    candidates = found.filter(
        pl.col("odd") | pl.col("blank") | (pl.col("fields") != n_fields) | pl.col("nul")
    )
    doubtful_lines = found.select("ln") if line_gate is not None else None
    raw_text = dict(candidates.select("ln", "text").iter_rows())
    plain = candidates.filter(~pl.col("odd")).select("ln", "fields", "blank", "nul")
    # n_lines: physical lines as the reader sees them (one per line end, plus an unterminated
    # last line), counted above.
    if n_lines == 0:
        return Structure(n_records=0)
    # Lines with quotes, by shape (few: a line the gate passed has none out of place).
    shape = {
        ln: (odd, wf, opens, closes)
        for ln, odd, wf, opens, closes in found.filter(pl.col("q") > 0)
        .select(
            "ln",
            "odd",
            pl.col("text").str.contains(_WELL_FORMED),
            pl.col("text").str.contains(_OPENS).alias("opens"),
            pl.col("text").str.contains(_CLOSES).alias("closes"),
        )
        .iter_rows()
    }
    # Records over several lines, as polars finds them (quote parity), except that a line
    # whose odd quote opens no quoted value is one damaged record, not the start of one.
    spans: list[tuple[int, int]] = []
    damaged: dict[int, str] = {}  # start line -> kind (`_MALFORMED`)
    open_at: int | None = None
    for ln in sorted(ln for ln, (odd, *_) in shape.items() if odd):
        _, _, opens, closes = shape[ln]
        if open_at is None:
            if opens or ln == 1:
                open_at = ln
            else:
                damaged[ln] = "stray"
        else:
            spans.append((open_at, ln))
            if not closes:
                damaged[open_at] = "span"
            open_at = None
    unterminated = open_at is not None
    if open_at is not None:
        spans.append((open_at, n_lines))
    if spans and spans[0][0] == 1:  # a name with a line break in the header: not read
        return Structure(n_records=0, header_lines=spans[0][1])
    in_span = {ln for a, b in spans for ln in range(a, b + 1)}
    for ln, (odd, wf, _, _) in shape.items():
        if not odd and not wf and ln > 1 and ln not in in_span:
            damaged[ln] = "after"
    n_records = n_lines - 1 - sum(b - a for a, b in spans)
    st = Structure(n_records=max(n_records, 0), unterminated_tail=unterminated and n_records > 0)

    def rec_of(ln: int) -> int:
        # Data record index of a line that starts a record: lines before it, less the header
        # and the continuation lines of earlier multi-line records.
        return ln - 2 - sum(b - a for a, b in spans if b < ln)

    st.multiline = pl.DataFrame(
        {
            "rec": [rec_of(a) for a, _ in spans],
            "line": [a for a, _ in spans],
            "n_lines": [b - a + 1 for a, b in spans],
        },
        schema={"rec": pl.Int64, "line": pl.Int64, "n_lines": pl.Int64},
    )
    if spans:
        st.raw_multiline = _multiline_text(path, st.multiline, nul_free=nul_free)
    counts: list[tuple[int, int, int]] = []
    nul_recs: dict[int, tuple[int, int]] = {}  # record -> (start line, 1-based position)
    for ln, fields, blank, nul in plain.iter_rows():
        if ln == 1 or ln in in_span:
            continue
        if blank:
            st.blank_recs.append(rec_of(ln))
        else:
            counts.append((rec_of(ln), ln, int(fields)))
            if nul:
                nul_recs[rec_of(ln)] = (ln, raw_text[ln].index(_NUL) + 1)
    for rec, ln, _ in st.multiline.iter_rows():
        text = st.raw_multiline.get(rec, "")
        counts.append((rec, ln, len(next(csv.reader(io.StringIO(text)), []))))
        if _NUL in text:
            nul_recs[rec] = (ln, text.index(_NUL) + 1)
    st.blank_recs.sort()
    last = st.n_records - 1
    cut_tail = last >= 0 and (st.unterminated_tail or not ends_with_newline)
    # One problem per record, the first that applies: a cut-off last record, a NUL byte,
    # damaged quotes, a wrong number of fields.
    claimed: set[int] = set()

    def problem(rec: int, ln: int, rule: str, message: str) -> None:
        claimed.add(rec)
        st.problems.append(StructureProblem(rec, ln, rule, message))

    if cut_tail:
        ln = _start_line(last, spans, n_lines)
        got = next((c for r, _, c in counts if r == last), n_fields)
        if st.unterminated_tail:
            problem(
                last,
                ln,
                "truncated_record",
                "the last record opens a quote that never closes (file cut short?)",
            )
        elif last not in st.blank_recs and got < n_fields:
            problem(
                last,
                ln,
                "truncated_record",
                f"the last line has {got} of {n_fields} fields and no line end (file cut short?)",
            )
    for rec, (ln, at) in nul_recs.items():
        if rec not in claimed:
            problem(
                rec,
                ln,
                "nul_byte",
                f"a NUL byte (0x00) at character {at} of the record: the export is damaged here",
            )
    for ln, kind in sorted(damaged.items()):
        if (rec := rec_of(ln)) not in claimed:
            problem(rec, ln, "malformed_quotes", _MALFORMED[kind])
            st.malformed_lines.append((ln, next((b for a, b in spans if a == ln), ln)))
    for rec, ln, got in sorted(counts):
        if got != n_fields and rec not in claimed:
            more = "more" if got > n_fields else "fewer"
            problem(rec, ln, "field_count", f"{got} fields, {more} than the header's {n_fields}")
    if damaged:
        damaged_text = found.filter(pl.col("ln").is_in(list(damaged))).select("ln", "text")
        raw_text.update(damaged_text.iter_rows())
    for pr in st.problems:
        if pr.rec not in st.raw_lines:
            st.raw_lines[pr.rec] = st.raw_multiline.get(pr.rec) or raw_text.get(pr.line) or ""
    st.problems.sort(key=lambda p: p.rec)
    if doubtful_lines is not None:
        st.doubtful_recs = _records_of_lines(doubtful_lines, spans)
    # Many doubtful records (a file in the wrong locale, say): their identities would be read
    # here one by one; the duplicates pass reads them faster.
    if with_keys and len(st.doubtful_recs or []) <= max(_MAX_DOUBTFUL_KEYS, st.n_records // 100):
        st.key_hashes = pl.concat(hashes) if hashes else pl.Series("key", [], pl.UInt64)
        line_text = dict(found.select("ln", "text").iter_rows())
        starts = {rec: ln for rec, ln, _ in st.multiline.iter_rows()}
        for rec in st.doubtful_recs or []:
            if rec >= st.readable_records:
                continue
            text = st.raw_multiline.get(rec) if rec in starts else None
            if text is None:
                text = line_text.get(_line_of(rec, spans), "") or ""
            st.doubtful_text.append((rec, text))
    return st


def _line_of(rec: int, spans: list[tuple[int, int]]) -> int:
    """Start line of data record `rec` (the inverse of the record numbering above)."""
    ln = rec + 2
    for a, b in sorted(spans):
        if a < ln:
            ln += b - a
    return ln


def _records_of_lines(lines: pl.DataFrame, spans: list[tuple[int, int]]) -> list[int]:
    """Data record index of every line in `lines` (`ln`) that starts a record (the header and
    the continuation lines of multi-line records are left out)."""
    df = lines.filter(pl.col("ln") > 1).sort("ln")
    if not spans:
        return df.select(pl.col("ln") - 2)["ln"].to_list()
    spans_df = pl.DataFrame(
        {"a": [a for a, _ in spans], "b": [b for _, b in spans]},
        schema={"a": pl.Int64, "b": pl.Int64},
    ).sort("a")
    # Lines strictly after a span's end are shifted by its continuation lines.
    shifts = spans_df.sort("b").select(
        __after=pl.col("b") + 1, __shift=(pl.col("b") - pl.col("a")).cum_sum()
    )
    df = (
        df.join_asof(spans_df, left_on="ln", right_on="a", strategy="backward")
        .filter(
            pl.col("b").is_null() | (pl.col("ln") == pl.col("a")) | (pl.col("ln") > pl.col("b"))
        )
        .join_asof(shifts, left_on="ln", right_on="__after", strategy="backward")
    )
    return df.select(pl.col("ln") - 2 - pl.col("__shift").fill_null(0))["ln"].to_list()


def _start_line(rec: int, spans: list[tuple[int, int]], n_lines: int) -> int:
    for a, b in spans:
        if b == n_lines:
            return a
    return rec + 2 + sum(b - a for a, b in spans)


def _multiline_text(path: Path, spans: pl.DataFrame, *, nul_free: bool) -> dict[int, str]:
    wanted = spans.select(
        pl.col("rec"),
        pl.int_ranges(pl.col("line"), pl.col("line") + pl.col("n_lines")).alias("line"),
    ).explode("line")
    df = (
        physical_lines(path, nul_free=nul_free)
        .with_row_index("ln", offset=1)
        .with_columns(pl.col("ln").cast(pl.Int64))
        .join(wanted.lazy().rename({"line": "ln"}), on="ln", how="inner")
        .collect(engine="streaming")
        .sort("ln")
        .group_by("rec", maintain_order=True)
        .agg(pl.col("line").fill_null("").str.join("\n"))
    )
    return dict(df.iter_rows())


def line_numbers(recs: pl.Expr, multiline: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Add `line` (1-based start line) to `frame`, whose `recs` are 0-based data records."""
    frame = frame.with_columns(__lnrec=recs.cast(pl.Int64))
    if multiline.height == 0:
        return frame.with_columns(line=pl.col("__lnrec") + 2).drop("__lnrec")
    extra = multiline.select(
        __after=pl.col("rec") + 1, __extra=(pl.col("n_lines") - 1).cum_sum()
    ).sort("__after")
    out = (
        frame.with_row_index("__order")
        .sort("__lnrec")
        .join_asof(extra, left_on="__lnrec", right_on="__after", strategy="backward")
        .with_columns(line=pl.col("__lnrec") + 2 + pl.col("__extra").fill_null(0))
        .sort("__order")
        .drop("__order", "__extra", "__lnrec")
        .drop("__after", strict=False)
    )
    return out
