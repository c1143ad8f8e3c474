"""Newest-wins resolution of conflicting duplicates (contract `newest_by`, Capillary exports).

Capillary exports are incremental by auto-update time, so a re-export legitimately repeats a
row (same identity) with newer content. Among the pending rows sharing an identity with
different content, the row with the greatest `newest_by` value is kept, copies of it are exact
duplicates, and the older versions are set aside as `superseded`. When the newest time is shared
by different contents, or some version has no time, nothing is decided here and the rows stay
conflicting (`duplicate_id`).
"""

from __future__ import annotations

import polars as pl

__all__ = ["SUPERSEDED", "mark_superseded"]

SUPERSEDED = "superseded"
"""Exclusion reason of an older version of an identity."""


def mark_superseded(pend: pl.DataFrame, column: str | None) -> pl.DataFrame:
    """Add `__newest` (the version kept), `__copy` (exact copies of it) and `__superseded`.

    Args:
        pend: pending duplicate rows sorted in file order, with `__key` (identity), `__hash`
            (content) and `__nh` (distinct contents of the identity); `column` holds the
            version's time (Unix seconds, as an integer or its text).
        column: the contract's `newest_by`; None marks nothing.
    """
    if column is None or column not in pend.columns:
        return pend.with_columns(
            __newest=pl.lit(False), __copy=pl.lit(False), __superseded=pl.lit(False)
        )
    t = pl.col(column).cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
    out = pend.with_columns(__t=t).with_columns(
        __top=pl.col("__t") == pl.col("__t").max().over("__key")
    )
    decided = (
        out.group_by("__key")
        .agg(
            __complete=pl.col("__t").is_not_null().all(),
            __top_contents=pl.col("__hash").filter(pl.col("__top")).n_unique(),
        )
        .filter(pl.col("__complete") & (pl.col("__top_contents") == 1))
        .select("__key", __decided=pl.lit(True))
    )
    eligible = (pl.col("__nh") > 1) & pl.col("__decided").fill_null(False)
    first_top = pl.col("__top").cast(pl.Int32).cum_sum().over("__key") == 1
    return (
        out.join(decided, on="__key", how="left", maintain_order="left")
        .with_columns(
            __newest=eligible & pl.col("__top") & first_top,
            __copy=eligible & pl.col("__top") & ~first_top,
            __superseded=eligible & ~pl.col("__top"),
        )
        .drop("__t", "__top", "__decided")
    )
