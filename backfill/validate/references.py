"""Cross-file rules (contract `[[references]]`), checked once every file of a run is validated.

A reference checks the valid rows of one export against the valid rows of another kind: the
payments' Customer ID among the customers, a refund against its charge, line items against their
bills. It runs as polars joins on the valid outputs (canonical names, converted values: Stripe
amounts in minor units, `created` in Unix seconds), in two rounds: error rules first (their rows
move from the valid file to the rejects file), then warning rules on what is still valid. A rule
is evaluated only when every file of its target kind in the run validated; otherwise the file's
report says why it was not (`references_not_checked`), so a missing file is never a silent pass.

Valid files carry no line numbers, so the line and raw text of a failing row are found again in
its source file: valid rows are matched to the source records that are neither rejected nor
excluded by their identity (in output form) and, within one identity, by order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from backfill.contracts import Contract, HeaderMatch
from backfill.contracts.model import ColumnSpec, Condition, Level, ReferenceSpec
from backfill.validate.result import FileResult
from backfill.validate.structure import Structure, line_numbers, records
from backfill.validate.values import output_value, with_values

__all__ = ["SourceFile", "check_references"]

_EPS = 1e-9
"""Slack for comparing sums of decimals (floats); integer minor units compare exactly."""
_NULL = "\x00"
_REJECT_COLS = ["line", "column", "rule", "message", "value", "raw_line"]
_WARN_COLS = ["line", "column", "rule", "value"]


@dataclass(frozen=True)
class SourceFile:
    """A file that passed the header check: its result and what is needed to find its lines."""

    result: FileResult
    header: list[str]
    match: HeaderMatch
    structure: Structure
    src: Path
    """The file the passes read: the input, or its UTF-8 / LF copy (engine._prepare)."""

    @property
    def contract(self) -> Contract:
        return self.match.contract

    def label(self, name: str) -> str:
        """Header of canonical column `name` as found in this file."""
        return self.match.matched_header.get(name, name)


def check_references(results: Sequence[FileResult], sources: Sequence[SourceFile]) -> None:
    """Evaluate every `[[references]]` rule of every validated file against the run's files.

    Updates the results (counts by rule, references checked / not checked, reject rate and
    status), the valid, rejects and warnings files, and rewrites each file's report.

    Args:
        results: every file of the run (the targets' status decides whether a rule runs).
        sources: the files that passed the header check.
    """
    t0 = time.perf_counter()
    by_kind: dict[str, list[SourceFile]] = {}
    for sf in sources:
        by_kind.setdefault(sf.contract.kind, []).append(sf)
    touched = [sf for sf in sources if sf.contract.references]
    levels: tuple[Level, ...] = ("error", "warning")
    for level in levels:
        # Every rule of a round sees the same valid files: all are evaluated, then applied.
        found = [
            (sf, _evaluate_file(sf, refs, results, by_kind))
            for sf in touched
            if (refs := [r for r in sf.contract.references if r.level == level])
        ]
        for sf, hits in found:
            if hits is not None:
                _apply(sf, hits, level)
    dt = (time.perf_counter() - t0) / len(touched) if touched else 0.0
    for sf in touched:
        res = sf.result
        res.passes["references"] = round(dt, 4)
        res.seconds += dt
        if res.report_path is not None:
            res.report_path.write_text(
                json.dumps(res.asdict(), indent=2, default=str) + "\n", encoding="utf-8"
            )


def _evaluate_file(
    sf: SourceFile,
    refs: list[ReferenceSpec],
    results: Sequence[FileResult],
    by_kind: dict[str, list[SourceFile]],
) -> pl.DataFrame | None:
    """Rows of `sf`'s valid file failing `refs` (`__pos` = row of the valid file), or None."""
    res = sf.result
    if res.status != "validated" or res.valid_path is None:
        for ref in refs:
            res.references_not_checked[ref.id] = (
                f"this file's valid rows are withheld (status {res.status})"
            )
        return None
    hits: list[pl.DataFrame] = []
    for ref in refs:
        targets = _targets(ref.target, results, by_kind)
        if isinstance(targets, str):
            res.references_not_checked[ref.id] = targets
            continue
        res.references_checked.append(ref.id)
        peers = [p for p in by_kind[sf.contract.kind] if p.result.valid_path is not None]
        rows = _EVALUATE[ref.check](sf, ref, targets, peers)
        if rows.height:
            hits.append(
                rows.select(
                    "__pos",
                    "__value",
                    __col=pl.lit(ref.column or ref.columns[0]),
                    rule=pl.lit(ref.id),
                    column=pl.lit(sf.label(ref.column or ref.columns[0])),
                    message=pl.col("__message"),
                )
            )
    return pl.concat(hits) if hits else None


def _apply(sf: SourceFile, found: pl.DataFrame, level: Level) -> None:
    """Reject (error) or warn the rows in `found`, with their source line, raw text and value."""
    if level == "error":
        # One reject per row: its first failed rule, in the contract's order.
        found = found.unique("__pos", keep="first", maintain_order=True)
    found = found.join(_locate(sf, found["__pos"]), on="__pos", how="left")
    # The value as written in the source (like the other rules), else as in the valid file.
    as_read = [
        pl.when(pl.col("__col") == name).then(pl.col(f"c{pos}").str.strip_chars())
        for name, pos in sf.match.columns.items()
    ]
    found = found.with_columns(
        value=pl.coalesce(*as_read, pl.col("__value"), pl.lit("")),
        raw_line=pl.col("raw_line").fill_null(""),
    )
    if level == "error":
        _reject(sf, found)
    else:
        _warn(sf, found)


def _targets(
    kind: str, results: Sequence[FileResult], by_kind: dict[str, list[SourceFile]]
) -> list[SourceFile] | str:
    """The validated files of `kind`, or why the rule cannot be evaluated."""
    same = [r for r in results if r.kind == kind]
    if not same:
        unknown = [r.path.name for r in results if r.kind is None]
        if unknown:
            return f"no {kind} file in this run (kind unknown, not validated: {', '.join(unknown)})"
        return f"no {kind} file in this run"
    bad = [r for r in same if r.status != "validated" or r.valid_path is None]
    if bad:
        names = ", ".join(f"{r.path.name} ({r.status})" for r in bad)
        return f"{kind} file(s) did not validate, their valid rows are withheld: {names}"
    return by_kind[kind]


def _names(targets: list[SourceFile]) -> str:
    return ", ".join(t.result.path.name for t in targets)


def _scan_valid(sf: SourceFile) -> pl.LazyFrame:
    assert sf.result.valid_path is not None
    return pl.scan_csv(sf.result.valid_path, infer_schema=False)


def _present(e: pl.Expr) -> pl.Expr:
    return e.is_not_null() & (e != "")


def _when(conds: tuple[Condition, ...]) -> pl.Expr:
    ok = pl.lit(True)
    for w in conds:
        ok = ok & pl.col(w.column).fill_null("").str.to_lowercase().is_in(
            [v.lower() for v in w.values]
        )
    return ok


def _typed(spec: ColumnSpec) -> pl.Expr:
    """The comparable value of an output column (read back from a valid file as text)."""
    e = pl.col(spec.name)
    if spec.type == "money":
        return e.cast(pl.Int64 if spec.convert == "minor_units" else pl.Float64, strict=False)
    if spec.type == "decimal":
        return e.cast(pl.Float64, strict=False)
    if spec.type == "int" or (spec.type == "datetime" and spec.convert == "unix_seconds"):
        return e.cast(pl.Int64, strict=False)
    if spec.type == "datetime" and spec.convert == "iso_utc":
        return e.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC")
    return e


def _shown(spec: ColumnSpec, e: pl.Expr) -> pl.Expr:
    """A typed value as text for a message (Unix seconds as a UTC date and time)."""
    if spec.type == "datetime" and spec.convert == "unix_seconds":
        return pl.from_epoch(e.cast(pl.Int64), "s").dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    if spec.type == "money" and spec.convert == "minor_units":
        return pl.format("{} minor units", e.cast(pl.String))
    return e.cast(pl.String)


def _holds(op: str, a: pl.Expr, b: pl.Expr, tolerance: float) -> pl.Expr:
    slack = tolerance + _EPS
    if op == "==":
        return (a - b).abs() <= slack
    if op == "!=":
        return (a - b).abs() > slack
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b + _EPS
    if op == ">":
        return a > b
    return a >= b - _EPS


def _exists(
    sf: SourceFile, ref: ReferenceSpec, targets: list[SourceFile], peers: list[SourceFile]
) -> pl.DataFrame:
    """Rows with a key none of whose non-empty columns is found in its target column."""
    lf = _scan_valid(sf).with_row_index("__pos").filter(_when(ref.when))
    present: list[pl.Expr] = []
    found: list[pl.Expr] = []
    for i, (col, tcol) in enumerate(zip(ref.columns, ref.target_columns, strict=True)):
        keys = (
            pl.concat([_scan_valid(t).select(pl.col(tcol).alias(f"__k{i}")) for t in targets])
            .filter(_present(pl.col(f"__k{i}")))
            .unique()
            .with_columns(pl.lit(True).alias(f"__f{i}"))
        )
        lf = lf.join(keys, left_on=col, right_on=f"__k{i}", how="left")
        present.append(_present(pl.col(col)))
        found.append(_present(pl.col(col)) & pl.col(f"__f{i}").fill_null(False))
    cols = list(dict.fromkeys(ref.columns))
    detail = pl.concat_str(
        [
            pl.when(_present(pl.col(c))).then(pl.format(f"{sf.label(c)} {{}}", pl.col(c)))
            for c in cols
        ],
        separator=", ",
        ignore_nulls=True,
    )
    shown = ref.column or ref.columns[0]
    return (
        lf.filter(pl.any_horizontal(present) & ~pl.any_horizontal(found))
        .select(
            "__pos",
            __value=pl.coalesce(pl.col(shown), *[pl.col(c) for c in cols]),
            __message=pl.format(
                f"{ref.message} ({{}} not found in {_names(targets)})",
                detail,
            ),
        )
        .collect(engine="streaming")
    )


def _target_values(ref: ReferenceSpec, targets: list[SourceFile]) -> pl.LazyFrame:
    """Target key -> typed and shown `right` value and the file it is in (first row per key)."""
    assert ref.right is not None
    spec = targets[0].contract.column(ref.right)
    return (
        pl.concat(
            [
                _scan_valid(t).select(
                    __k=pl.col(ref.target_columns[0]),
                    __r=_typed(spec),
                    __rshown=_shown(spec, _typed(spec)),
                    __tfile=pl.lit(t.result.path.name),
                )
                for t in targets
            ]
        )
        .filter(_present(pl.col("__k")))
        .unique("__k", keep="first", maintain_order=True)
    )


def _compare(
    sf: SourceFile, ref: ReferenceSpec, targets: list[SourceFile], peers: list[SourceFile]
) -> pl.DataFrame:
    """Rows whose `left` does not stand in `op` to the `right` of the target row of their key."""
    assert ref.left is not None and ref.op is not None and ref.right is not None
    key = ref.columns[0]
    spec = sf.contract.column(ref.left)
    right_label = targets[0].contract.column(ref.right).header
    left = _typed(spec)
    return (
        _scan_valid(sf)
        .with_row_index("__pos")
        .filter(_when(ref.when) & _present(pl.col(key)))
        .join(_target_values(ref, targets), left_on=key, right_on="__k", how="inner")
        .filter(
            left.is_not_null()
            & pl.col("__r").is_not_null()
            & ~_holds(ref.op, left, pl.col("__r"), ref.tolerance)
        )
        .select(
            "__pos",
            __value=pl.col(ref.left),
            __message=pl.format(
                f"{ref.message} ({sf.label(ref.left)} {{}}; {sf.label(key)} {{}} in {{}}: "
                f"{right_label} {{}})",
                _shown(spec, left),
                pl.col(key),
                pl.col("__tfile"),
                pl.col("__rshown"),
            ),
        )
        .collect(engine="streaming")
    )


def _sum(
    sf: SourceFile, ref: ReferenceSpec, targets: list[SourceFile], peers: list[SourceFile]
) -> pl.DataFrame:
    """Rows of the key groups whose sum of `left` does not stand in `op` to the target's `right`.

    The sums run over the valid rows of every file of this kind in the run (`peers`: refunds of
    one charge may come from several exports); the rows returned are `sf`'s.
    """
    assert ref.left is not None and ref.op is not None and ref.right is not None
    key = ref.columns[0]
    spec = sf.contract.column(ref.left)
    right_label = targets[0].contract.column(ref.right).header
    rows = pl.concat(
        [
            _scan_valid(p)
            .with_row_index("__pos")
            .filter(_when(ref.when) & _present(pl.col(key)))
            .select(
                "__pos",
                key,
                ref.left,
                __self=pl.lit(p is sf),
                __l=pl.when(_when(ref.negate)).then(-_typed(spec)).otherwise(_typed(spec))
                if ref.negate
                else _typed(spec),
            )
            for p in peers
        ]
    )
    bad = (
        rows.group_by(key)
        .agg(__sum=pl.col("__l").sum(), __n=pl.len())
        .join(_target_values(ref, targets), left_on=key, right_on="__k", how="inner")
        .filter(
            pl.col("__r").is_not_null()
            & ~_holds(ref.op, pl.col("__sum"), pl.col("__r"), ref.tolerance)
        )
    )
    total = _shown(spec, pl.col("__sum").round(6) if spec.type != "money" else pl.col("__sum"))
    return (
        rows.filter(pl.col("__self"))
        .join(bad, on=key, how="inner")
        .select(
            "__pos",
            __value=pl.col(ref.left),
            __message=pl.format(
                f"{ref.message} ({sf.label(ref.left)} adds up to {{}} over {{}} row(s) with "
                f"{sf.label(key)} {{}}; {right_label} in {{}}: {{}})",
                total,
                pl.col("__n"),
                pl.col(key),
                pl.col("__tfile"),
                pl.col("__rshown"),
            ),
        )
        .collect(engine="streaming")
    )


_Evaluate = Callable[[SourceFile, ReferenceSpec, list[SourceFile], list[SourceFile]], pl.DataFrame]
_EVALUATE: dict[str, _Evaluate] = {
    "exists": _exists,
    "compare": _compare,
    "sum": _sum,
}


def _identity(exprs: list[pl.Expr]) -> pl.Expr:
    """One text key for an identity in output form; empty and missing parts compare equal."""
    parts = [
        pl.when(_present(e.cast(pl.String))).then(e.cast(pl.String)).otherwise(pl.lit(_NULL))
        for e in exprs
    ]
    return pl.concat_str(parts, separator="\x1f").alias("__id")


def _csv_field(e: pl.Expr) -> pl.Expr:
    t = e.fill_null("")
    quoted = pl.concat_str([pl.lit('"'), t.str.replace_all('"', '""', literal=True), pl.lit('"')])
    return pl.when(t.str.contains('[,"\r\n]')).then(quoted).otherwise(t)


def _lines_of(path: Path | None) -> pl.Series:
    if path is None or not path.exists():
        return pl.Series("line", [], pl.Int64)
    return pl.read_csv(path, columns=["line"], schema_overrides={"line": pl.Int64})["line"]


def _locate(sf: SourceFile, pos: pl.Series) -> pl.DataFrame:
    """`__pos` (row of the valid file) -> `line` and `raw_line` of its source record."""
    res, c = sf.result, sf.contract
    ident = [c.column(k) for k in c.identity]
    valid = (
        _scan_valid(sf)
        .with_row_index("__pos")
        .select("__pos", _identity([pl.col(k.name) for k in ident]))
    )
    wanted = valid.filter(pl.col("__pos").is_in(pos.implode())).select("__id").unique()
    mine = (
        valid.join(wanted, on="__id", how="semi")
        .with_columns(__rank=pl.col("__pos").rank("ordinal").over("__id"))
        .collect(engine="streaming")
    )
    n = len(sf.header)
    st = sf.structure
    fields = {f"c{i}": pl.String for i in range(n)}
    if st.readable_records <= 0:
        return pl.DataFrame(
            schema={"__pos": pl.UInt32, "line": pl.Int64, "raw_line": pl.String, **fields}
        )
    # The identity columns only, converted as the engine converts them for the valid file.
    sub = c.model_copy(
        update={
            "columns": tuple(ident),
            "rules": (),
            "exclude": (),
            "unique": (),
            "references": (),
        }
    )
    src = (
        records(sf.src, n, st.readable_records)
        .with_columns(
            [
                (
                    pl.col(f"c{sf.match.columns[k.name]}").str.strip_chars()
                    if k.name in sf.match.columns
                    else pl.lit(None, pl.String)
                ).alias(k.name)
                for k in ident
            ]
        )
        .pipe(with_values, sub, locale=c.number_locale, tz={})
        .with_columns(_identity([output_value(k) for k in ident]))
        .join(wanted, on="__id", how="semi")
        .select(
            pl.col("__rec").cast(pl.Int64),
            "__id",
            *fields,
            raw_line=pl.concat_str([_csv_field(pl.col(f)) for f in fields], separator=","),
        )
        .collect(engine="streaming")
    )
    gone = pl.concat([_lines_of(res.rejects_path), _lines_of(res.excluded_path)])
    src = (
        line_numbers(pl.col("__rec"), st.multiline, src)
        .filter(~pl.col("line").is_in(gone.implode()))
        .with_columns(__rank=pl.col("__rec").rank("ordinal").over("__id"))
    )
    return mine.join(src, on=["__id", "__rank"], how="inner").select(
        "__pos", "line", "raw_line", *fields
    )


def _reject(sf: SourceFile, found: pl.DataFrame) -> None:
    """Move the rows in `found` from the valid file to the rejects file; update the counts."""
    res = sf.result
    assert res.valid_path is not None and res.rejects_path is not None
    tmp = res.valid_path.with_name(res.valid_path.name + ".tmp")
    (
        pl.scan_csv(res.valid_path, infer_schema=False)
        .with_row_index("__pos")
        .filter(~pl.col("__pos").is_in(found["__pos"].implode()))
        .drop("__pos")
        .sink_csv(tmp)
    )
    tmp.replace(res.valid_path)
    _append(res.rejects_path, found.select(_REJECT_COLS))
    n = found.height
    res.rows_valid -= n
    res.rows_rejected += n
    for rule, k in found.group_by("rule").len().iter_rows():
        res.rejected_by_rule[rule] = res.rejected_by_rule.get(rule, 0) + int(k)
    res.rejected_by_rule = dict(sorted(res.rejected_by_rule.items()))
    res.check_invariant()
    denom = res.rows_read - res.rows_excluded
    res.reject_rate = round(res.rows_rejected / denom, 6) if denom else 0.0
    if res.reject_rate > res.max_reject_rate:
        res.status = "failed"
        res.message = (
            f"{res.path}: {res.rows_rejected} of {denom} rows rejected ({res.reject_rate:.1%}, "
            f"cross-file rules included), above the maximum {res.max_reject_rate:.1%}. "
            "The valid file is withheld."
        )
        res.valid_path.unlink(missing_ok=True)
        res.valid_path = None


def _warn(sf: SourceFile, found: pl.DataFrame) -> None:
    """Add the rows in `found` to the warnings file and the counts."""
    res = sf.result
    assert res.warnings_path is not None
    _append(res.warnings_path, found.select(_WARN_COLS))
    for rule, k in found.group_by("rule").len().iter_rows():
        res.warnings_by_rule[rule] = res.warnings_by_rule.get(rule, 0) + int(k)
    res.warnings_by_rule = dict(sorted(res.warnings_by_rule.items()))


def _append(path: Path, rows: pl.DataFrame) -> None:
    """Add `rows` to an output CSV (`line` first), keeping it sorted by line."""
    rows = rows.with_columns(pl.col("line").cast(pl.String))
    old = (
        pl.read_csv(path, infer_schema=False)
        if path.exists()
        else pl.DataFrame(schema=dict.fromkeys(rows.columns, pl.String))
    )
    (
        pl.concat([old.select(rows.columns), rows.cast(pl.String)])
        .sort(pl.col("line").cast(pl.Int64, strict=False), maintain_order=True, nulls_last=True)
        .write_csv(path)
    )
