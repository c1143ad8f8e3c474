"""Nest: Capillary bills joined with their line items, one JSON object per bill and line.

Capillary exports one row per bill (`capillary_transactions`) and one row per line item
(`capillary_line_items`), while Data Prep maps one input record to one XDM record: an
ExperienceEvent carries its products in `productListItems`, so a bill must reach AEP as one
record holding its line items. From the validator's valid files (canonical column names) this
writes, per transactions file, a JSON-lines file beside it: every bill column as the valid CSV
gives it (text; an empty cell is null) and `line_items`, the bill's line items (each with every
line-item column), joined on `bill_id` from all the line-item files given.

A line item whose bill is in none of the transactions files is set aside, with the reason
`orphan_line_item`, in `<name>.orphans.csv` beside its valid file, so nothing is lost:
per line-item file, valid = nested + orphans.

Polars does the work: the line items are grouped by bill once, then each transactions file is
joined to the groups and written out, never walked row by row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

__all__ = [
    "LINE_ITEMS",
    "ORPHAN_REASON",
    "TRANSACTIONS",
    "LineItemsOutcome",
    "NestError",
    "NestResult",
    "NestedBills",
    "jsonl_path",
    "nest_bills",
    "orphans_path",
]

TRANSACTIONS = "capillary_transactions"
"""The kind whose records nest (one bill)."""
LINE_ITEMS = "capillary_line_items"
"""The kind nested into it (the bill's products)."""
ORPHAN_REASON = "orphan_line_item"
"""Why a line item was set aside: no transactions file holds its bill."""
JOIN_KEY = "bill_id"
NESTED_FIELD = "line_items"


class NestError(Exception):
    """A valid file cannot be read or nested; the message names the file."""


@dataclass(frozen=True)
class NestedBills:
    """What one transactions file became."""

    valid_path: Path
    jsonl_path: Path
    bills: int
    """Objects written: one per valid row of the transactions file."""
    line_items: int
    """Line items nested into those bills."""


@dataclass(frozen=True)
class LineItemsOutcome:
    """Where the valid rows of one line-item file went."""

    valid_path: Path
    nested: int
    orphans: int
    orphans_path: Path | None
    """The set-aside rows (None when there are none)."""


@dataclass(frozen=True)
class NestResult:
    """Per transactions file its JSON-lines file, per line-item file its counts."""

    bills: dict[Path, NestedBills]
    line_items: dict[Path, LineItemsOutcome]


def jsonl_path(valid_path: Path) -> Path:
    """The JSON-lines file written beside a transactions valid file (`.csv` -> `.jsonl`)."""
    name = valid_path.name
    stem = name[: -len(".csv")] if name.lower().endswith(".csv") else name
    return valid_path.with_name(f"{stem}.jsonl")


def orphans_path(valid_path: Path) -> Path:
    """Where a line-item file's orphans go: `<name>.orphans.csv` for `<name>.valid.csv`."""
    name = valid_path.name
    stem = name.removesuffix(".valid.csv") if name.endswith(".valid.csv") else valid_path.stem
    return valid_path.with_name(f"{stem}.orphans.csv")


def _scan(path: Path) -> pl.LazyFrame:
    # every cell as the valid CSV gives it: no type guessing (external ids keep their
    # leading zeros, decimals their digits); an empty cell is null
    return pl.scan_csv(path, infer_schema=False)


def _columns(path: Path) -> list[str]:
    try:
        names = _scan(path).collect_schema().names()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise NestError(f"{path}: cannot read: {exc}") from None
    if JOIN_KEY not in names:
        raise NestError(f"{path}: no `{JOIN_KEY}` column to join bills and line items on")
    return names


def nest_bills(
    transactions: Sequence[Path],
    line_items: Sequence[Path],
    *,
    shipped_bills: Sequence[Path] = (),
) -> NestResult:
    """Write each transactions file's bills, their line items nested, as JSON lines.

    Args:
        transactions: valid files of `capillary_transactions` (canonical column names).
        line_items: valid files of `capillary_line_items`; all of them are joined to every
            transactions file.
        shipped_bills: JSON-lines files an earlier run wrote and shipped with these line
            items nested (when another bills file of that run failed to ship): their bills
            count as known, so their line items are counted nested, not set aside.

    Returns:
        The JSON-lines file and counts per transactions file, the nested and orphan counts
        (and orphans file) per line-item file.

    Raises:
        NestError: a file cannot be read or has no `bill_id` column.
    """
    item_columns: list[str] | None = None
    for path in line_items:
        names = _columns(path)
        if item_columns is not None and names != item_columns:
            raise NestError(
                f"{path}: columns {names} differ from the other line-item files' {item_columns}"
            )
        item_columns = names
    for path in transactions:
        _columns(path)
    known = [_scan(p).select(JOIN_KEY) for p in transactions] + [
        pl.scan_ndjson(p, schema={JOIN_KEY: pl.String}) for p in shipped_bills
    ]
    bill_ids = (
        pl.concat(known).unique()
        if known
        else pl.LazyFrame({JOIN_KEY: []}, schema={JOIN_KEY: pl.String})
    )
    try:
        bill_ids_frame = bill_ids.collect()
        outcomes: dict[Path, LineItemsOutcome] = {}
        for path in line_items:
            items = _scan(path)
            orphans = items.join(bill_ids_frame.lazy(), on=JOIN_KEY, how="anti").collect()
            total = items.select(pl.len()).collect().item()
            target = orphans_path(path)
            if orphans.height:
                orphans.with_columns(pl.lit(ORPHAN_REASON).alias("reason")).write_csv(target)
            else:
                target.unlink(missing_ok=True)
            outcomes[path] = LineItemsOutcome(
                valid_path=path,
                nested=total - orphans.height,
                orphans=orphans.height,
                orphans_path=target if orphans.height else None,
            )
        grouped: pl.DataFrame | None = None
        if line_items and item_columns is not None:
            grouped = (
                pl.concat([_scan(p) for p in line_items])
                .group_by(JOIN_KEY, maintain_order=True)
                .agg(pl.struct(item_columns).alias(NESTED_FIELD))
                .collect()
            )
        bills: dict[Path, NestedBills] = {}
        for path in transactions:
            frame = _scan(path)
            if grouped is not None:
                empty = pl.lit(pl.Series([[]], dtype=grouped.schema[NESTED_FIELD]))
                frame = frame.join(
                    grouped.lazy(), on=JOIN_KEY, how="left", maintain_order="left"
                ).with_columns(pl.col(NESTED_FIELD).fill_null(empty))
                nested_count = pl.col(NESTED_FIELD).list.len().sum()
            else:
                frame = frame.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(NESTED_FIELD))
                nested_count = pl.lit(0)
            target = jsonl_path(path)
            tmp = target.with_name(target.name + ".tmp")
            frame.sink_ndjson(tmp)
            counts = frame.select(pl.len(), nested_count).collect().row(0)
            tmp.replace(target)
            bills[path] = NestedBills(
                valid_path=path, jsonl_path=target, bills=counts[0], line_items=int(counts[1] or 0)
            )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise NestError(f"nesting line items into bills failed: {exc}") from None
    return NestResult(bills=bills, line_items=outcomes)
