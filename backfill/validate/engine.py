"""Validate CSV exports against their contracts: the passes, in order, for a set of files.

1. structure: bytes (encoding, BOM, line ends) then records (field counts, cut-off tail,
   multi-line records), before any value is read; the header is matched to a contract. The
   line gate (gate.py) runs on every raw line here: the records whose line misses it are the
   doubtful ones.
2. duplicates: per kind, across all files of that kind, only the identities are read and only
   those seen more than once are kept (small): hashed from the raw lines by the structure pass
   when the identity is the first cell (`_line_duplicates`), else in a read of their own
   (`_duplicates`). Doing this inside the main query (`is_duplicated()`) would make polars
   hold the whole file.
3. rules: per file, a fast lane writes the rows nothing is doubtful about, and an exact lane
   evaluates every rule on the others (`_main_pass`), splitting them into valid / rejected /
   excluded / pending-duplicate. Pending duplicates (few) are then resolved in memory: exact
   copies are excluded, older versions superseded by a newer one (contract `newest_by`,
   supersede.py) are excluded, conflicting ones rejected, and the survivors appended to the
   valid file.
4. references: once every file of every kind is done, the cross-file rules (references.py).

Every input row ends up in exactly one of valid, rejects or excluded, and the counts are checked.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from backfill.contracts import Contract, DetectionError, HeaderMatch, clean_header, detect
from backfill.contracts.model import NumberLocale
from backfill.validate import parse, references, supersede
from backfill.validate.encoding import EncodingError, cr_to_lf, scan_bytes, transcode_to_utf8
from backfill.validate.gate import (
    build_gate,
    gate_part,
    line_pattern,
    pattern_body,
    whitespace_free,
)
from backfill.validate.reader_tuning import apply_reader_defaults
from backfill.validate.result import FileResult, InvariantError, RunResult
from backfill.validate.rules import (
    Check,
    ColumnEnv,
    build_checks,
    lowered_columns,
    text_col,
    unique_value,
)
from backfill.validate.structure import (
    Structure,
    blank_records,
    line_numbers,
    read_header,
    records,
    scan_structure,
)
from backfill.validate.values import (
    MONEY_STAND_IN_RULES,
    canonical_lower,
    money_stand_ins,
    output_value,
    with_values,
)

__all__ = ["DEFAULT_MAX_REJECT_RATE", "ValidateOptions", "validate_files"]

apply_reader_defaults()  # before any scan of ours runs (reader_tuning.py)

DEFAULT_MAX_REJECT_RATE = 0.05
# Outcome of a row in the main pass (a small integer: cheaper to compare than text).
_VALID, _REJECTED, _EXCLUDED, _PENDING = 0, 1, 2, 3
# Up to this many rows the exact lane is evaluated into memory (tens of MB at most: their text
# and outputs) rather than streamed to a file and read back (the file and its reads cost ~5 ms
# of a 200k-row slice's 0.28 s); a file whose rows are nearly all doubtful (wrong locale, say)
# still streams, so memory stays flat.
_RARE_IN_MEMORY = 20_000


@dataclass(frozen=True)
class ValidateOptions:
    """How to validate: where outputs go and the settings that apply to every file."""

    out_dir: Path
    kind: str | None = None
    encoding: str | None = None
    account_timezone: str = "UTC"
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    cutover: datetime | None = None
    locale: NumberLocale | None = None
    now: datetime | None = None
    fast_lane: bool = True
    """False: every row takes the exact lane (same results, slower; tests compare the two)."""


@dataclass
class _Prepared:
    """A file that passed the structure pass and the header check."""

    result: FileResult
    src: Path
    """UTF-8 file to read (the input, or its transcoded copy)."""
    header: list[str]
    match: HeaderMatch
    structure: Structure
    work: Path
    stem: str
    env: ColumnEnv
    checks: list[Check] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    extra_rejects: list[pl.DataFrame] = field(default_factory=list)
    extra_excluded: list[pl.DataFrame] = field(default_factory=list)
    extra_valid: int = 0

    @property
    def contract(self) -> Contract:
        return self.match.contract


def _stems(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = p.name[:-4] if p.name.lower().endswith(".csv") else p.name
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}-{n + 1}")
    return out


def _resolve_tz(spec: str, header: str | None, account: str) -> str:
    if spec == "header":
        return "UTC" if header and "(utc)" in header.casefold() else account
    if spec == "account":
        return account
    return spec


def _file_labels(paths: list[Path]) -> dict[int, str]:
    """How messages name each file: its name, or its path when two files share a name."""
    names = [p.name for p in paths]
    return {i: p.name if names.count(p.name) == 1 else str(p) for i, p in enumerate(paths)}


def _header_hint(header: list[str]) -> str:
    """A hint when the header fits no contract for a reason it shows: NUL characters (UTF-16
    read without its byte-order mark), or one field holding another separator (an export from
    Excel in a locale with decimal commas uses `;`; "Unicode Text" uses tabs)."""
    if any("\x00" in h for h in header):
        return (
            ". The header holds NUL characters: the file looks like UTF-16 without a "
            "byte-order mark; pass --encoding utf-16-le (or utf-16-be)"
        )
    if len(header) != 1:
        return ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if sep in header[0]:
            return (
                f". The header is one field holding {name}: the file seems separated by {name}, "
                "and exports are read as comma-separated; save it again as CSV with commas"
            )
    return ""


def _prepare(
    path: Path, stem: str, contracts: dict[str, Contract], opts: ValidateOptions
) -> _Prepared | FileResult:
    res = FileResult(path=path, status="unreadable")
    t0 = time.perf_counter()
    try:
        if not path.is_file():
            res.message = f"{path}: " + (
                "a directory, not a file" if path.is_dir() else "no such file"
            )
            return res
        facts = scan_bytes(path, opts.encoding)
    except (EncodingError, LookupError, OSError) as exc:
        res.message = (
            str(exc)
            if not isinstance(exc, LookupError)
            else f"{path}: unknown encoding {opts.encoding!r}"
        )
        return res
    res.bytes, res.bom, res.line_endings = facts.size, facts.bom, facts.line_endings
    # One scratch dir per file (removed after its report), and the copies the passes read
    # instead of the input (UTF-8, LF line ends) apart from them: kept until the cross-file
    # rules, which read the same copy, are done. A stem is any file name: each has a parent.
    work = opts.out_dir / ".work" / "files" / stem
    work.mkdir(parents=True, exist_ok=True)
    copies = opts.out_dir / ".work" / "sources"
    src = path
    if facts.encoding != "utf-8":
        copies.mkdir(exist_ok=True)
        src = copies / f"{stem}.utf8.csv"
        transcode_to_utf8(path, src, facts.encoding)
        res.encoding = facts.encoding
        how = "detected" if facts.detected else "declared"
        res.encoding_note = f"not UTF-8 ({how} {facts.encoding}, first non-UTF-8 byte on line {facts.first_bad_line}); converted to UTF-8"
        if not facts.detected:
            res.encoding_note = f"read as declared {facts.encoding}; converted to UTF-8"
        elif facts.first_bad_line is None:  # told by its byte-order mark
            res.encoding_note = f"{facts.encoding} (byte-order mark); converted to UTF-8"
        # Line ends, NUL and CR bytes as the passes will see them: counted on the source's
        # bytes they are wrong for an encoding that is not ASCII-compatible (UTF-16: "a" is
        # 61 00). The encoding facts stay those of the source.
        text = scan_bytes(src)
        facts = replace(facts, crlf=text.crlf, lf=text.lf, cr=text.cr, nul=text.nul)
        facts.ends_with_newline = text.ends_with_newline
        res.line_endings = facts.line_endings
    if facts.line_endings == "CR":
        copies.mkdir(exist_ok=True)
        lf_copy = copies / f"{stem}.lf.csv"
        cr_to_lf(src, lf_copy)
        src = lf_copy
        res.line_end_note = (
            "lines end in CR only (classic Mac OS, Excel's CSV (Macintosh)); read as LF "
            "(a CR inside a quoted value is read as LF too)"
        )
    if facts.size == 0:
        res.status, res.message = "header", f"{path}: empty file (no header)"
        return res
    header = clean_header(read_header(src))
    res.status = "header"
    if not any(header):
        res.message = f"{path}: the first line is empty (no header)"
        return res
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        res.message = f"{path}: duplicate column names {dupes}"
        return res
    try:
        match, why = detect(contracts, [h for h in header], opts.kind)
    except DetectionError as exc:
        res.message = f"{path}: {exc}{_header_hint(header)}"
        res.unknown_columns = header
        return res
    c = match.contract
    res.kind, res.why, res.era, res.contract_confirmed = c.kind, why, match.era, c.confirmed
    res.unknown_columns = [h for h in match.unknown if h]
    res.missing_columns = match.missing_required
    if match.missing_required:
        res.message = f"{path}: header does not fit {c.kind}: missing required column(s) {', '.join(match.missing_required)}"
        return res
    try:
        tz = {
            col.name: _resolve_tz(
                col.timezone, match.matched_header.get(col.name), opts.account_timezone
            )
            for col in c.columns
            if col.type == "datetime"
        }
        for z in set(tz.values()):
            ZoneInfo(z)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        res.message = f"{path}: unknown time zone ({exc})"
        return res
    locale = opts.locale or c.number_locale
    structure = scan_structure(
        src,
        len(header),
        ends_with_newline=facts.ends_with_newline,
        line_gate=line_pattern(c, header, match.columns, locale) if opts.fast_lane else None,
        first_cell_keys=(lambda e: _value_hash(e))
        if opts.fast_lane and _identity_is_first_cell(c, match, locale)
        else None,
        nul_free=not facts.nul,
    )
    if structure.header_lines > 1:
        res.status = "header"
        res.message = (
            f"{path}: the header spans lines 1-{structure.header_lines} (a quoted column name "
            "with a line break); no export writes one: fix the header"
        )
        return res
    if structure.malformed_lines:  # the reader reads a copy without those records' text
        copies.mkdir(exist_ok=True)
        blanked = copies / f"{stem}.blanked.csv"
        blank_records(src, blanked, structure.malformed_lines)
        src = blanked
    res.status = "validated"
    res.passes["structure"] = time.perf_counter() - t0
    env = ColumnEnv(
        header=match.matched_header,
        tz=tz,
        locale=opts.locale or c.number_locale,
        now=(opts.now or datetime.now(UTC)).replace(tzinfo=None),
    )
    return _Prepared(res, src, header, match, structure, work, stem, env)


def _frame(p: _Prepared, untrimmed: frozenset[str] = frozenset()) -> pl.LazyFrame:
    """All records of the file as text, under canonical names (+ pass-through columns).

    Contract columns are trimmed, except those in `untrimmed` (the fast lane's, whose gate
    sends any row with edge whitespace in them to the exact lane, which trims)."""
    n = len(p.header)
    rows = p.structure.readable_records
    if rows <= 0:
        lf = pl.LazyFrame(schema={"__rec": pl.Int64, **{f"c{i}": pl.String for i in range(n)}})
    else:
        lf = records(p.src, n, rows)
    return _named(p, lf, untrimmed)


def _named(p: _Prepared, lf: pl.LazyFrame, untrimmed: frozenset[str] = frozenset()) -> pl.LazyFrame:
    """Columns `c0`.. of `lf` under canonical names (contract columns trimmed unless in
    `untrimmed`) and pass-through names; `__rec` kept."""
    sel: list[pl.Expr] = [pl.col("__rec").cast(pl.Int64)]
    # Contract columns are trimmed once here; pass-through columns are kept as they are.
    for col in p.contract.columns:
        pos = p.match.columns.get(col.name)
        if pos is None:
            src = pl.lit(None, pl.String)
        elif col.name in untrimmed:
            src = pl.col(f"c{pos}")
        else:
            src = pl.col(f"c{pos}").str.strip_chars()
        sel.append(src.alias(col.name))
    names = {c.name for c in p.contract.columns}
    for i, h in enumerate(p.header):
        if i in p.match.columns.values() or not h:
            continue
        sel.append(pl.col(f"c{i}").alias(h if h not in names else f"{h} (source)"))
    return lf.select(sel)


def _csv_field(e: pl.Expr) -> pl.Expr:
    t = e.fill_null("")
    needs = t.str.contains('[,"\r\n]')
    quoted = pl.concat_str([pl.lit('"'), t.str.replace_all('"', '""', literal=True), pl.lit('"')])
    return pl.when(needs).then(quoted).otherwise(t)


def _record_text(p: _Prepared) -> pl.Expr:
    """The record as read, written back as one CSV line in the file's column order."""
    by_pos = {pos: name for name, pos in p.match.columns.items()}
    names = {c.name for c in p.contract.columns}
    cols = []
    for i, h in enumerate(p.header):
        if i in by_pos:
            cols.append(pl.col(by_pos[i]))
        elif h:
            cols.append(pl.col(h if h not in names else f"{h} (source)"))
        else:
            cols.append(pl.lit(""))
    return pl.concat_str([_csv_field(c) for c in cols], separator=",")


def _passthrough(p: _Prepared) -> list[str]:
    names = {c.name for c in p.contract.columns}
    used = set(p.match.columns.values())
    return [
        h if h not in names else f"{h} (source)"
        for i, h in enumerate(p.header)
        if i not in used and h
    ]


def _key(contract: Contract) -> pl.Expr:
    """A row's identity as text: the first non-blank part (`coalesce`), or every part joined
    (`composite`, where a blank part is an empty component: a points entry without a program
    is still an entry). Null, so no identity, only when every part is blank."""
    parts = [
        pl.when(parse.blank(text_col(k))).then(None).otherwise(text_col(k))
        for k in contract.identity
    ]
    if contract.identity_mode == "coalesce" or len(parts) == 1:
        return pl.coalesce(parts).alias("__key")
    # The parts as they are shipped where the text may differ: an int without leading zeros
    # (`07` is 7), an enum read in any case in lower case (`CREDIT` is `credit`; both are
    # shipped as the contract spells it). A single-part identity stays as written: the
    # structure pass hashes it from the raw line.
    cols = [contract.column(k) for k in contract.identity]
    parts = [
        p.str.replace(r"^0+([0-9])", "$1")
        if col.type == "int"
        else p.str.to_lowercase()
        if col.enum and col.case_insensitive
        else p
        for p, col in zip(parts, cols, strict=True)
    ]
    joined = pl.concat_str([p.fill_null("") for p in parts], separator="\x1f")
    none = pl.all_horizontal([p.is_null() for p in parts])
    return pl.when(none).then(None).otherwise(joined).alias("__key")


def _shown_key() -> pl.Expr:
    """`__key` as messages and the excluded file show it: the parts of a composite identity
    separated by ` | ` (they are joined by an invisible unit separator for comparing)."""
    return pl.col("__key").str.replace_all("\x1f", " | ", literal=True)


def _identity_is_first_cell(c: Contract, match: HeaderMatch, locale: NumberLocale) -> bool:
    """The identity is the file's first cell whenever that cell is not empty, and the line gate
    checks that cell's form (no quote, no comma, no edge whitespace): the structure pass can
    then hash identities itself (`_line_duplicates`)."""
    if c.unique or not c.identity or match.columns.get(c.identity[0]) != 0:
        return False
    if len(c.identity) > 1 and c.identity_mode != "coalesce":
        return False
    first = c.column(c.identity[0])
    if first.type != "string" or not first.pattern or gate_part(first, locale) is None:
        return False
    inner = pattern_body(first.pattern)
    return inner is not None and whitespace_free(inner)


def _line_duplicates(files: list[_Prepared]) -> pl.Series:
    """The duplicates pass without a read of its own: identities hashed by the structure pass
    from the first cell of every line that matched the gate, and those of the doubtful records
    (few) read from their text here, with the same trimming and key as the main pass."""
    hashes: list[pl.Series] = []
    for p in files:
        st = p.structure
        assert st.key_hashes is not None
        hashes.append(st.key_hashes.alias("__h"))
        if not st.doubtful_text:
            continue
        n = len(p.header)
        rows = []
        for _, text in st.doubtful_text:
            cells = next(csv.reader(io.StringIO(text)), [])
            rows.append((cells + [None] * n)[:n])
        df = pl.DataFrame(
            [[rec for rec, _ in st.doubtful_text], *zip(*rows, strict=True)],
            schema={"__rec": pl.Int64, **{f"c{i}": pl.String for i in range(n)}},
            orient="col",
        ).with_columns(pl.col(pl.String).replace("", None))
        got = (
            _named(p, df.lazy())
            .select(_key(p.contract))
            .filter(pl.col("__key").is_not_null())
            .select(__h=_key_hash())
            .collect()
        )
        hashes.append(got["__h"])
    # Sorted, a hash seen twice sits next to itself (4x faster than value_counts here).
    ordered = pl.concat(hashes).sort()
    return ordered.filter(ordered == ordered.shift(1)).unique().alias("__h")


def _duplicates(files: list[_Prepared]) -> tuple[pl.Series, dict[str, pl.Series]]:
    """The duplicates pass: identities seen more than once, and unique values shared by two
    identities, over all files of one kind. Only these (few) values are collected.

    Identities are grouped by their 64-bit hash, not their text, so the group table stays small
    (8 bytes a row) whatever the width of the ids: the identities come back as hashes. A hash
    shared by two different identities only sends those rows to the pending set, whose exact
    resolution (`_resolve_duplicates`, on the text) keeps a row whose identity is single. For
    unique values, the hashes seen more than once are only candidates: the values and identities
    of those rows are then compared as text in a second, filtered read (only when there is a
    candidate), because a unique rule rejects rows by itself.

    Returns:
        (identity hashes seen more than once, unique-rule id -> values shared by two identities).
    """
    contract = files[0].contract
    lowered = [pl.col(n).str.to_lowercase().alias(f"__l_{n}") for n in lowered_columns(contract)]
    frames = pl.concat(
        [
            _frame(p)
            .with_columns(lowered)
            .select(
                _key(contract),
                *[unique_value(u).alias(f"__u{i}") for i, u in enumerate(contract.unique)],
            )
            for p in files
        ]
    )
    queries = [
        frames.filter(pl.col("__key").is_not_null())
        .select(__h=_key_hash())
        .group_by("__h")
        .len()
        .filter(pl.col("len") > 1)
        .select("__h")
    ]
    for i, _ in enumerate(contract.unique):
        u = f"__u{i}"
        queries.append(
            frames.filter(pl.col(u).is_not_null())
            .select(__uh=_value_hash(pl.col(u)))
            .group_by("__uh")
            .len()
            .filter(pl.col("len") > 1)
            .select("__uh")
        )
    out = pl.collect_all(queries, engine="streaming")
    keys = out[0]["__h"]
    values: dict[str, pl.Series] = {}
    exact = []
    for i, u in enumerate(contract.unique):
        shared = out[i + 1]["__uh"]
        values[u.id] = pl.Series(f"__u{i}", [], pl.String)
        if shared.len():
            col = pl.col(f"__u{i}")
            exact.append(
                (
                    u.id,
                    frames.filter(_value_hash(col).is_in(shared.implode()))
                    .group_by(col)
                    .agg(pl.col("__key").n_unique().alias("n"))
                    .filter(pl.col("n") > 1)
                    .select(col),
                )
            )
    if exact:
        got = pl.collect_all([q for _, q in exact], engine="streaming")
        for (uid, _), df in zip(exact, got, strict=True):
            values[uid] = df.to_series()
    return keys, values


def _key_hash() -> pl.Expr:
    """The 64-bit hash of `__key` the duplicates pass and the main pass both use."""
    return _value_hash(pl.col("__key"))


def _value_hash(e: pl.Expr) -> pl.Expr:
    """The 64-bit hash the duplicates pass groups values by (same seed in every pass)."""
    return e.hash(seed=0)


def _exclusion_tests(p: _Prepared, cutover: datetime | None) -> list[tuple[pl.Expr, str]]:
    """(test, reason) of every exclusion by value: the contract's, then the cut-over."""
    c = p.contract
    tests = [
        (parse.one_of(pl.col(f"__l_{ex.column}"), [v.lower() for v in ex.values]), ex.reason)
        for ex in c.exclude
    ]
    if cutover is not None and c.event_time:
        cut = pl.lit(cutover.astimezone(UTC).replace(tzinfo=None)).dt.replace_time_zone("UTC")
        tests.append((pl.col(f"__v_{c.event_time}") >= cut, "after_cutover"))
    return tests


def _exclusion(p: _Prepared, cutover: datetime | None) -> pl.Expr:
    """Why a row is set aside (blank line, contract exclusions, after the cut-over), or null."""
    rec = pl.col("__rec")
    excl: pl.Expr = pl.when(rec.is_in(p.structure.blank_recs)).then(pl.lit("blank_line"))
    for test, reason in _exclusion_tests(p, cutover):
        excl = excl.when(test).then(pl.lit(reason))
    return excl.otherwise(None)


def _hit(chk: Check) -> pl.Expr:
    return pl.col(chk.failed.meta.output_name())


def _main_pass(
    p: _Prepared,
    dup_keys: pl.Series,
    dup_values: dict[str, pl.Series],
    cutover: datetime | None,
    *,
    fast_lane: bool = True,
) -> None:
    """Evaluate every rule in one streaming query and write valid/rejected/excluded/pending rows.

    Two lanes, one read of the file:

    - fast lane, every row: not doubtful (the structure pass ran the gate, gate.py, on its raw
      line; without a line gate, the same gate runs on the joined cells here), and none of the
      rules the gate does not cover fails on values computed the cheap way the gate allows. A
      row that is also not excluded, has no warning and no duplicate identity is written to
      the valid file directly; the others are written out as text.
    - exact lane, those rows (few), in a second query: the full evaluation (`_exact_lane`);
      its rows are collected in memory (up to `_RARE_IN_MEMORY`) or go to one rare-row file,
      and are split afterwards (`_split_rare`). Rows it finds valid
      after all (a gate false alarm, or a warning only) are appended to the valid file.

    `dup_keys` are the hashes of identities seen more than once (`_duplicates` or
    `_line_duplicates`): rows with such an identity go to the pending set, resolved exactly
    afterwards. `fast_lane=False` sends every row to the exact lane.
    """
    c = p.contract
    p.env = replace(p.env, duplicated=dup_values)
    env = p.env
    checks = build_checks(env, c)
    p.checks = checks
    gate = build_gate(c, env.locale, env.header)  # type: ignore[arg-type]
    gated = gate.columns if gate else frozenset()
    covered = gate.covered if gate else frozenset()
    trimmed = gate.trimmed if gate and fast_lane else frozenset()
    # Amount rules of gated money columns: one test per column stands in for them.
    stand_ins = money_stand_ins(c, gated)
    replaced = {(r, env.label(n)) for n in stand_ins for r in MONEY_STAND_IN_RULES}
    fast_checks = [chk for chk in checks if (chk.rule, chk.column) not in covered | replaced]
    st = p.structure
    struct_recs = [pr.rec for pr in st.problems if pr.rec < st.readable_records]
    base = ["__rec", *[col.name for col in c.columns], *_passthrough(p)]
    lf = with_values(
        _frame(p, trimmed),
        c,
        locale=env.locale,  # type: ignore[arg-type]
        tz=env.tz,
        gated=gated,
        fast=True,
    )
    # Whether any rule the gate leaves fails: one null-fill for all of them (Kleene `or`: a
    # true wins over a null, which is a pass), not one per rule.
    fails = [chk.raw for chk in fast_checks] + list(stand_ins.values())
    doubtful = [pl.any_horizontal(fails).fill_null(False)] if fails else []
    lowered = set(lowered_columns(c, gated=gated))
    doubtful += [
        not_canonical
        for name, (_, not_canonical) in canonical_lower(c).items()
        if name in lowered and not_canonical is not None
    ]
    rec = pl.col("__rec")
    set_aside = struct_recs + st.blank_recs  # records with a structure problem, blank lines
    if st.doubtful_recs is not None:  # the structure pass ran the gate on the raw lines
        # Neither kind of record matches the gate: only those that somehow did are added.
        seen = set(st.doubtful_recs)
        set_aside = [r for r in set_aside if r not in seen]
        doubtful.append(rec.is_in(st.doubtful_recs))
    elif gate is not None:
        doubtful.append(~gate.ok)
    if set_aside:
        doubtful.append(rec.is_in(set_aside))
    # Exclusions by value as booleans (the reasons are the exact lane's business).
    doubtful += [test.fill_null(False) for test, _ in _exclusion_tests(p, cutover)]
    doubtful.append(_key(c).pipe(_value_hash).is_in(dup_keys.implode()))
    # One evaluation feeds both sinks and the count (without the cache node collect_all
    # re-runs the whole plan per sink).
    is_fast = ~pl.any_horizontal(doubtful).fill_null(True) if fast_lane else pl.lit(False)
    lf = lf.with_columns(__fast=is_fast).cache()
    fast = pl.col("__fast")
    out_cols = [output_value(col, fast=True) for col in c.columns]
    passthrough = [pl.col(h) for h in _passthrough(p)]
    valid_path = p.result.valid_path
    assert valid_path is not None
    rare_path = p.work / "rare.parquet"
    errors = [chk for chk in checks if chk.level == "error"]
    warnings = [chk for chk in checks if chk.level == "warning"]
    doubtful_path = p.work / "doubtful.parquet"
    queries: list[pl.LazyFrame] = [
        lf.filter(fast).select(out_cols + passthrough).sink_csv(valid_path, lazy=True),
        # Only the text goes out here: evaluating the exact lane inside this query would cost
        # its whole plan once per morsel, however few rows each morsel has left.
        lf.filter(~fast).select(base).with_columns(_owned()).sink_parquet(doubtful_path, lazy=True),
        lf.select(__n=pl.len(), __fast=fast.sum()),
    ]
    out = pl.collect_all(queries, engine="streaming")
    n_read, n_fast = (int(v) for v in out[2].row(0))
    p.counts[("valid", "")] = n_fast
    n_rare = n_read - n_fast
    lane = _exact_lane(p, pl.scan_parquet(doubtful_path), errors, warnings, dup_keys, cutover)
    if n_rare <= _RARE_IN_MEMORY:
        # Few rows: evaluated into memory and split there; no file in between.
        rare = lane.collect().lazy()
    else:
        lane.sink_parquet(rare_path, engine="streaming")
        rare = pl.scan_parquet(rare_path)
    _split_rare(p, rare, warnings, n_rare)


def _exact_lane(
    p: _Prepared,
    lf: pl.LazyFrame,
    errors: list[Check],
    warnings: list[Check],
    dup_keys: pl.Series,
    cutover: datetime | None,
) -> pl.LazyFrame:
    """Every rule, exactly, on rows of the frame (`lf`: `__rec`, contract and pass-through text).

    Per row: the outcome, and what that outcome needs (rejected: the first failed rule's index,
    its value and the record text; pending and valid: the output values; warnings as a list).
    Names are attached later (a name lookup inside would stop the query streaming).
    """
    c, env = p.contract, p.env
    st = p.structure
    struct_recs = [pr.rec for pr in st.problems if pr.rec < st.readable_records]
    struct_hit = pl.col("__rec").is_in(struct_recs)
    # Trimmed here: the fast lane hands some columns over untrimmed (see `_frame`).
    lf = lf.with_columns(pl.col(col.name).str.strip_chars() for col in c.columns)
    lf = with_values(lf, c, locale=env.locale, tz=env.tz).with_columns(  # type: ignore[arg-type]
        [chk.failed for chk in p.checks]
    )
    any_error = pl.any_horizontal([_hit(chk) for chk in errors]) if errors else pl.lit(False)
    lf = lf.with_columns(
        __excl=pl.when(struct_hit).then(None).otherwise(_exclusion(p, cutover)),
        __key=_key(c),
    )
    o = pl.col("__outcome")
    lf = lf.with_columns(
        __outcome=pl.when(struct_hit)
        .then(pl.lit(_REJECTED, pl.UInt8))
        .when(pl.col("__excl").is_not_null())
        .then(pl.lit(_EXCLUDED, pl.UInt8))
        .when(any_error)
        .then(pl.lit(_REJECTED, pl.UInt8))
        .when(_key_hash().is_in(dup_keys.implode()))
        .then(pl.lit(_PENDING, pl.UInt8))
        .otherwise(pl.lit(_VALID, pl.UInt8))
    )
    out_cols = [output_value(col) for col in c.columns]
    passthrough = [pl.col(h) for h in _passthrough(p)]
    err = pl.col("__err")
    first_error = (
        pl.coalesce([pl.when(_hit(chk)).then(pl.lit(i, pl.Int32)) for i, chk in enumerate(errors)])
        if errors
        else pl.lit(None, pl.Int32)
    )
    # Copies are judged on what would be shipped: the output values (a status written 'Paid'
    # in one file and 'paid' in the other is the same row), and pass-through text as it is.
    shipped = [e.cast(pl.String).fill_null("") for e in out_cols] + [
        h.fill_null("") for h in passthrough
    ]
    is_rejected, is_pending = o == _REJECTED, o == _PENDING
    keeps = o.is_in([_VALID, _PENDING])
    cols: list[pl.Expr] = [
        pl.col("__rec"),
        o,
        pl.col("__excl"),
        pl.col("__key"),
        err,
        pl.when(is_rejected | is_pending).then(_record_text(p)).alias("__raw"),
        pl.when(is_pending).then(pl.concat_str(shipped, separator="\x1f").hash()).alias("__hash"),
        *[pl.when(keeps).then(e) for e in out_cols],
        *[pl.when(keeps).then(h) for h in passthrough],
        pl.when(is_rejected & ~struct_hit)
        .then(
            pl.coalesce(
                [pl.when(err == i).then(chk.value.cast(pl.String)) for i, chk in enumerate(errors)]
                or [pl.lit("")]
            )
        )
        .alias("__val"),
    ]
    if warnings:
        items = [
            pl.when(_hit(w)).then(
                pl.struct(
                    rule=pl.lit(w.rule), column=pl.lit(w.column), value=w.value.cast(pl.String)
                )
            )
            for w in warnings
        ]
        cols.append(
            pl.when(keeps & pl.any_horizontal([_hit(w) for w in warnings]))
            .then(pl.concat_list(items).list.drop_nulls())
            .alias("__w")
        )
    return (
        lf.with_columns(__err=pl.when(is_rejected).then(first_error))
        .select(cols)
        .with_columns(_owned())
    )


def _split_rare(p: _Prepared, rare: pl.LazyFrame, warnings: list[Check], expected: int) -> None:
    """Write the rows of the exact lane (`rare`: in memory or its file) out by kind (rejects,
    excluded, pending, warnings), and append the ones it found valid to the valid file.

    Raises:
        InvariantError: the exact lane does not hold every row the fast lane left to it.
    """
    o = pl.col("__outcome")
    out_names = [col.name for col in p.contract.columns] + _passthrough(p)
    pl.collect_all(
        [
            rare.filter(o == _REJECTED)
            .select("__rec", "__err", "__raw", pl.col("__val").fill_null(""))
            .sink_parquet(p.work / "rejects.parquet", lazy=True),
            rare.filter(o == _EXCLUDED)
            .select("__rec", "__excl", "__key")
            .sink_parquet(p.work / "excluded.parquet", lazy=True),
            rare.filter(o == _PENDING)
            .select("__rec", "__key", "__hash", "__raw", *out_names)
            .sink_parquet(p.work / "pending.parquet", lazy=True),
        ]
    )
    got = rare.select(pl.len()).collect().item()
    if got != expected:
        raise InvariantError(
            f"{p.result.path}: the fast lane left {expected} rows to the exact lane, which has {got}"
        )
    valid = rare.filter(o == _VALID).select(out_names).collect()
    if valid.height:
        assert p.result.valid_path is not None
        with p.result.valid_path.open("ab") as fh:
            valid.write_csv(fh, include_header=False)
        p.extra_valid += valid.height
    if not warnings:
        return
    warned = rare.filter(pl.col("__w").is_not_null()).select("__rec", "__w").collect()
    flat = warned.explode("__w").unnest("__w")
    flat.write_parquet(p.work / "warnings.parquet")


def _owned() -> pl.Expr:
    """Copy every text column of a frame into buffers of its own.

    A filtered polars string column still points into the buffers of the rows it came from.
    A sink that gets a few rows from all over the file (rejects, pending duplicates) buffers
    them before writing, and so kept every buffer those rows point into: memory grew with the
    file (0.4 GB more at 1 GB). Copying the few rows' text releases them.
    """
    return pl.col(pl.String) + pl.lit("")


def _resolve_duplicates(files: list[_Prepared]) -> None:
    frames = []
    for i, p in enumerate(files):
        path = p.work / "pending.parquet"
        if path.exists():
            frames.append(pl.read_parquet(path).with_columns(__file=pl.lit(i)))
    if not frames:
        return
    pend = pl.concat(frames, how="diagonal_relaxed").sort("__file", "__rec")
    if pend.height == 0:
        return
    pend = pend.with_columns(
        __n=pl.len().over("__key"),
        __nh=pl.col("__hash").n_unique().over("__key"),
        __first=pl.int_range(pl.len()).over("__key") == 0,
    )
    lines = {}
    for i, p in enumerate(files):
        sub = pend.filter(pl.col("__file") == i).select("__rec")
        if sub.height:
            lines[i] = line_numbers(pl.col("__rec"), p.structure.multiline, sub)["line"].to_list()
    pend = pend.with_columns(__line=pl.lit(0))
    parts = []
    for i in lines:
        sub = pend.filter(pl.col("__file") == i).with_columns(__line=pl.Series(lines[i]))
        parts.append(sub)
    pend = pl.concat(parts).sort("__file", "__rec")
    where = (
        pend.select(
            "__key",
            loc=pl.format(
                "{}:{}",
                pl.col("__file").replace_strict(
                    _file_labels([p.result.path for p in files]), return_dtype=pl.String
                ),
                pl.col("__line"),
            ),
        )
        .group_by("__key", maintain_order=True)
        .agg(pl.col("loc").str.join(", "))
    )
    pend = pend.join(where, on="__key", how="left")
    pend = supersede.mark_superseded(pend, files[0].contract.newest_by)
    keep = (pl.col("__n") == 1) | ((pl.col("__nh") == 1) & pl.col("__first")) | pl.col("__newest")
    exact = ((pl.col("__nh") == 1) & ~pl.col("__first")) | pl.col("__copy")
    for i, p in enumerate(files):
        mine = pend.filter(pl.col("__file") == i)
        if mine.height == 0:
            continue
        valid = mine.filter(keep)
        cols = [col.name for col in p.contract.columns] + _passthrough(p)
        if valid.height:
            assert p.result.valid_path is not None
            with p.result.valid_path.open("ab") as fh:
                valid.select(cols).write_csv(fh, include_header=False)
            p.extra_valid += valid.height
        ex = mine.filter(exact)
        if ex.height:
            p.extra_excluded.append(
                ex.select("__rec", __excl=pl.lit("exact_duplicate"), __key=pl.col("__key"))
            )
            p.result.duplicates["exact"] = p.result.duplicates.get("exact", 0) + ex.height
        old = mine.filter(pl.col("__superseded"))
        if old.height:
            p.extra_excluded.append(
                old.select("__rec", __excl=pl.lit(supersede.SUPERSEDED), __key=pl.col("__key"))
            )
            dup = p.result.duplicates
            dup["superseded"] = dup.get("superseded", 0) + old.height
        conflict = mine.filter(~keep & ~exact & ~pl.col("__superseded"))
        if conflict.height:
            label = p.env.label(p.contract.identity[0])
            p.extra_rejects.append(
                conflict.select(
                    "__rec",
                    __rule=pl.lit("duplicate_id"),
                    __col=pl.lit(label),
                    __val=_shown_key(),
                    __raw=pl.col("__raw"),
                    __msg=pl.format(
                        "identity {} appears with different content at {}",
                        _shown_key(),
                        pl.col("loc"),
                    ),
                )
            )
            p.result.duplicates["conflicting"] = (
                p.result.duplicates.get("conflicting", 0) + conflict.height
            )


def _messages(p: _Prepared) -> dict[tuple[str, str], str]:
    return {(chk.rule, chk.column): chk.message for chk in p.checks}


def _finalize(p: _Prepared, max_rate: float) -> None:
    res = p.result
    st = p.structure
    errors = [chk for chk in p.checks if chk.level == "error"]
    struct_rule = {pr.rec: pr.rule for pr in st.problems}
    rej = (
        pl.read_parquet(p.work / "rejects.parquet")
        .with_columns(
            __rule=pl.coalesce(
                pl.col("__rec").replace_strict(struct_rule, default=None, return_dtype=pl.String),
                pl.col("__err").replace_strict(
                    dict(enumerate(c.rule for c in errors)), default=None, return_dtype=pl.String
                ),
            ),
            __col=pl.when(pl.col("__rec").is_in(list(struct_rule)))
            .then(pl.lit(""))
            .otherwise(
                pl.col("__err").replace_strict(
                    dict(enumerate(c.column for c in errors)), default=None, return_dtype=pl.String
                )
            ),
            __msg=pl.lit(None, pl.String),
        )
        .select("__rec", "__rule", "__col", "__val", "__msg", "__raw")
    )
    tail = [pr for pr in st.problems if pr.rec >= st.readable_records]
    frames = [rej]
    if tail:
        frames.append(
            pl.DataFrame(
                {
                    "__rec": [t.rec for t in tail],
                    "__rule": [t.rule for t in tail],
                    "__col": [""] * len(tail),
                    "__val": [""] * len(tail),
                    "__msg": [t.message for t in tail],
                    "__raw": [st.raw_lines.get(t.rec, "") for t in tail],
                },
                schema=rej.schema,
            )
        )
    frames += [f.select(rej.columns).cast(rej.schema) for f in p.extra_rejects]  # type: ignore[arg-type]
    rej = pl.concat(frames).sort("__rec")
    msgs = pl.DataFrame(
        [(r, c, m) for (r, c), m in _messages(p).items()],
        schema={"__rule": pl.String, "__col": pl.String, "__tmsg": pl.String},
        orient="row",
    )
    struct_msgs = {pr.rec: pr.message for pr in st.problems}
    rej = (
        rej.join(msgs, on=["__rule", "__col"], how="left", maintain_order="left")
        .with_columns(
            __msg=pl.coalesce(
                pl.col("__msg"),
                pl.col("__rec").replace_strict(struct_msgs, default=None, return_dtype=pl.String),
                pl.col("__tmsg"),
                pl.col("__rule"),
            )
        )
        .drop("__tmsg")
    )
    rej = line_numbers(pl.col("__rec"), st.multiline, rej)
    # Structural rejects: the physical text (their fields cannot be trusted); others: the record.
    rej = rej.with_columns(
        raw_line=pl.coalesce(
            pl.col("__rec").replace_strict(st.raw_lines, default=None, return_dtype=pl.String),
            pl.col("__raw"),
        )
    )
    rej.select(
        "line", column="__col", rule="__rule", message="__msg", value="__val", raw_line="raw_line"
    ).write_csv(res.rejects_path)  # type: ignore[arg-type]
    res.rows_rejected = rej.height
    res.rejected_by_rule = {
        r: int(n) for r, n in rej.group_by("__rule").len().sort("__rule").iter_rows()
    }

    exc = pl.read_parquet(p.work / "excluded.parquet")
    exc = pl.concat([exc, *[f.cast(exc.schema) for f in p.extra_excluded]]).sort("__rec")  # type: ignore[arg-type]
    exc = line_numbers(pl.col("__rec"), st.multiline, exc)
    exc.select("line", reason="__excl", identity=_shown_key()).write_csv(res.excluded_path)  # type: ignore[arg-type]
    res.excluded = {r: int(n) for r, n in exc.group_by("__excl").len().sort("__excl").iter_rows()}

    wpath = p.work / "warnings.parquet"
    warn = (
        pl.read_parquet(wpath)
        if wpath.exists()
        else pl.DataFrame(
            schema={"__rec": pl.Int64, "rule": pl.String, "column": pl.String, "value": pl.String}
        )
    )
    # Warnings belong to shipped rows: not to those the duplicates step set aside (copies,
    # superseded versions) or rejected (conflicting versions).
    resolved = [f["__rec"] for f in (*p.extra_excluded, *p.extra_rejects)]
    if resolved:
        warn = warn.filter(~pl.col("__rec").is_in(pl.concat(resolved).implode()))
    warn = line_numbers(pl.col("__rec"), st.multiline, warn).sort("line")
    warn.select("line", "column", "rule", "value").write_csv(res.warnings_path)  # type: ignore[arg-type]
    res.warnings_by_rule = {
        r: int(n) for r, n in warn.group_by("rule").len().sort("rule").iter_rows()
    }

    res.rows_read = st.n_records
    res.rows_valid = p.counts.get(("valid", ""), 0) + p.extra_valid
    res.check_invariant()
    denom = res.rows_read - res.rows_excluded
    res.reject_rate = round(res.rows_rejected / denom, 6) if denom else 0.0
    res.max_reject_rate = max_rate
    if res.reject_rate > max_rate:
        res.status = "failed"
        res.message = (
            f"{res.path}: {res.rows_rejected} of {denom} rows rejected ({res.reject_rate:.1%}), above the "
            f"maximum {max_rate:.1%}; wrong locale or encoding? The valid file is withheld."
        )
        if res.valid_path and res.valid_path.exists():
            res.valid_path.unlink()
        res.valid_path = None


def _write_report(res: FileResult) -> None:
    assert res.report_path is not None
    res.report_path.write_text(
        json.dumps(res.asdict(), indent=2, default=str) + "\n", encoding="utf-8"
    )


def validate_files(
    paths: Sequence[Path], contracts: dict[str, Contract], opts: ValidateOptions
) -> RunResult:
    """Validate every file; write valid, rejects, warnings, excluded and report files to `opts.out_dir`.

    Never raises for bad input: unreadable files and header mismatches come back as results with
    status `unreadable` / `header` and a message naming the file and the columns.

    Raises:
        InvariantError: the counts do not add up (a bug in the validator).
    """
    t_run = time.perf_counter()
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    results: list[FileResult] = []
    prepared: list[_Prepared] = []
    for path, stem in zip(paths, _stems(paths), strict=True):
        t0 = time.perf_counter()
        got = _prepare(Path(path), stem, contracts, opts)
        if isinstance(got, FileResult):
            got.seconds = time.perf_counter() - t0
            results.append(got)
            continue
        r = got.result
        r.valid_path = opts.out_dir / f"{stem}.valid.csv"
        r.rejects_path = opts.out_dir / f"{stem}.rejects.csv"
        r.warnings_path = opts.out_dir / f"{stem}.warnings.csv"
        r.excluded_path = opts.out_dir / f"{stem}.excluded.csv"
        r.report_path = opts.out_dir / f"{stem}.report.json"
        r.seconds = time.perf_counter() - t0
        prepared.append(got)
        results.append(r)
    by_kind: dict[str, list[_Prepared]] = {}
    for p in prepared:
        by_kind.setdefault(p.contract.kind, []).append(p)
    for files in by_kind.values():
        t0 = time.perf_counter()
        if all(p.structure.key_hashes is not None for p in files):
            keys, values = _line_duplicates(files), {}
            for p in files:  # 8 bytes a row: not kept through the main pass
                p.structure.key_hashes = pl.Series("__h", [], pl.UInt64)
        else:
            keys, values = _duplicates(files)
        dt = (time.perf_counter() - t0) / len(files)
        for p in files:
            p.result.passes["duplicates"] = dt
            p.result.seconds += dt
        for p in files:
            t0 = time.perf_counter()
            _main_pass(p, keys, values, opts.cutover, fast_lane=opts.fast_lane)
            p.result.passes["rules"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _resolve_duplicates(files)
        dt = (time.perf_counter() - t0) / len(files)
        for p in files:
            t1 = time.perf_counter()
            rate = (
                p.contract.max_reject_rate
                if p.contract.max_reject_rate is not None
                else opts.max_reject_rate
            )
            _finalize(p, rate)
            p.result.passes["rules"] += dt + time.perf_counter() - t1
            p.result.seconds += p.result.passes["rules"]
            p.result.passes = {k: round(v, 4) for k, v in p.result.passes.items()}
            _write_report(p.result)
            shutil.rmtree(p.work, ignore_errors=True)
    references.check_references(
        results,
        [references.SourceFile(p.result, p.header, p.match, p.structure, p.src) for p in prepared],
    )
    shutil.rmtree(opts.out_dir / ".work", ignore_errors=True)
    run = RunResult(files=results, out_dir=opts.out_dir, seconds=time.perf_counter() - t_run)
    run.report_path = opts.out_dir / "validate-report.json"
    run.report_path.write_text(
        json.dumps(run.asdict(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    return run
