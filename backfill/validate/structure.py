"""Pass 1b: records and fields, per physical line, before any value is looked at.

polars cannot say which line had too many or too few fields (it errors, or pads/truncates with
`truncate_ragged_lines`), so this pass reads the file as physical lines (no quoting, one text
column), counts quotes and separators per line with polars expressions, and works out in
memory, on small integer columns only, where each record starts (a record continues while a
quote is open) and how many fields it has. Records that span lines (newlines inside quotes) are
few; their text is fetched in a second, filtered read and split with the `csv` module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

__all__ = [
    "Structure",
    "StructureProblem",
    "line_numbers",
    "physical_lines",
    "read_header",
    "scan_structure",
]

_LINE_SEP = "\x00"  # a separator that does not occur in CSV text: one column per physical line
_QUOTED = r'"[^"]*"'


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
    problems: list[StructureProblem] = field(default_factory=list)
    blank_recs: list[int] = field(default_factory=list)
    multiline: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"rec": pl.Int64, "line": pl.Int64, "n_lines": pl.Int64}
        )
    )
    """Data records spanning several lines: rec, start line, number of lines."""
    raw_multiline: dict[int, str] = field(default_factory=dict)
    unterminated_tail: bool = False
    """The last record opens a quote that never closes (the reader must stop before it)."""

    @property
    def readable_records(self) -> int:
        """Records the polars reader may read (all but an unterminated tail)."""
        return self.n_records - (1 if self.unterminated_tail else 0)


def read_header(path: Path) -> list[str]:
    """The first record's fields, as written (BOM and spaces not yet stripped)."""
    with path.open(encoding="utf-8", newline="") as fh:
        row = next(csv.reader(fh), None)
    return row or []


def physical_lines(path: Path) -> pl.LazyFrame:
    """The file as one text column `line`, one row per physical line (CR stripped)."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator=_LINE_SEP,
        quote_char=None,
        schema={"line": pl.String},
        truncate_ragged_lines=True,
        extra_columns="ignore",
    )


def scan_structure(path: Path, n_fields: int, *, ends_with_newline: bool) -> Structure:
    """Find every record's start line and field count; report the ones that do not fit.

    Args:
        path: a UTF-8 CSV file.
        n_fields: number of header fields.
        ends_with_newline: whether the last byte is a newline (else the last line may be cut).
    """
    line = pl.col("line")
    q = line.str.count_matches('"', literal=True).fill_null(0).cast(pl.Int64)
    lines = physical_lines(path).with_row_index("line_no", offset=1)
    # Commas inside quotes are only worked out on lines that have quotes (a regex per line
    # would cost more than the rest of the pass); both queries share one read of the file.
    counts, quoted = pl.collect_all(
        [
            lines.select(
                pl.col("line_no").cast(pl.Int64).alias("line"),
                q=q,
                commas=line.str.count_matches(",", literal=True).fill_null(0).cast(pl.Int64),
                blank=line.is_null(),
            ),
            lines.filter(q > 0).select(
                pl.col("line_no").cast(pl.Int64),
                unquoted=line.str.replace_all(_QUOTED, "")
                .str.count_matches(",", literal=True)
                .cast(pl.Int64),
            ),
        ],
        engine="streaming",
    )
    per_line = counts if counts["line"].is_sorted() else counts.sort("line")
    if quoted.height:
        per_line = (
            per_line.join(
                quoted, left_on="line", right_on="line_no", how="left", maintain_order="left"
            )
            .with_columns(commas=pl.coalesce("unquoted", "commas"))
            .drop("unquoted")
        )
    n_lines = per_line.height
    if n_lines == 0:
        return Structure(n_records=0)
    per_line = per_line.with_columns(cont=((pl.col("q").cum_sum() - pl.col("q")) % 2 == 1))
    per_line = per_line.with_columns(rec=(~pl.col("cont")).cum_sum().cast(pl.Int64) - 2)
    unterminated = int(per_line["q"].sum()) % 2 == 1
    n_records = int(per_line["rec"].max()) + 1  # type: ignore[arg-type]
    st = Structure(n_records=max(n_records, 0), unterminated_tail=unterminated and n_records > 0)

    spans = (
        per_line.filter(pl.col("rec") >= 0)
        .group_by("rec")
        .agg(line=pl.col("line").min().cast(pl.Int64), n_lines=pl.len().cast(pl.Int64))
        .filter(pl.col("n_lines") > 1)
        .sort("rec")
    )
    st.multiline = spans
    singles = per_line.filter((pl.col("rec") >= 0) & ~pl.col("cont"))
    if spans.height:
        singles = singles.join(spans.select("rec"), on="rec", how="anti")
        st.raw_multiline = _multiline_text(path, spans)
    st.blank_recs = singles.filter(pl.col("blank"))["rec"].to_list()
    bad = singles.filter(~pl.col("blank") & (pl.col("commas") + 1 != n_fields))
    counts = [(r, ln, c + 1) for r, ln, c in bad.select("rec", "line", "commas").iter_rows()]
    for r, ln, _ in spans.iter_rows():
        text = st.raw_multiline[r]
        counts.append((r, ln, len(next(csv.reader(io.StringIO(text)), []))))
    last = st.n_records - 1
    for rec, ln, got in sorted(counts):
        if rec == last and (not ends_with_newline or st.unterminated_tail):
            continue
        if got != n_fields:
            more = "more" if got > n_fields else "fewer"
            st.problems.append(
                StructureProblem(
                    rec, ln, "field_count", f"{got} fields, {more} than the header's {n_fields}"
                )
            )
    if last >= 0 and (st.unterminated_tail or not ends_with_newline):
        row = per_line.filter(pl.col("rec") == last)
        ln = int(row["line"].min())  # type: ignore[arg-type]
        if st.unterminated_tail:
            st.problems.append(
                StructureProblem(
                    last,
                    ln,
                    "truncated_record",
                    "the last record opens a quote that never closes (file cut short?)",
                )
            )
        else:
            got = next((c for r, _, c in counts if r == last), None)
            if got is None:
                got = int(row["commas"][0]) + 1
            if got < n_fields and not bool(row["blank"][0]):
                st.problems.append(
                    StructureProblem(
                        last,
                        ln,
                        "truncated_record",
                        f"the last line has {got} of {n_fields} fields and no line end (file cut short?)",
                    )
                )
            elif got > n_fields:
                st.problems.append(
                    StructureProblem(
                        last, ln, "field_count", f"{got} fields, more than the header's {n_fields}"
                    )
                )
    st.problems.sort(key=lambda p: p.rec)
    return st


def _multiline_text(path: Path, spans: pl.DataFrame) -> dict[int, str]:
    wanted = spans.select(
        pl.col("rec"),
        pl.int_ranges(pl.col("line"), pl.col("line") + pl.col("n_lines")).alias("line"),
    ).explode("line")
    df = (
        physical_lines(path)
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
