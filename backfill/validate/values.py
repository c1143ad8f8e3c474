"""Typed values of contract columns, and their output form for the destination.

Typed values are null whenever the text is not valid, so they can be used by cross-column
rules without re-checking. The output conversions turn them into what the destination expects:
integer minor units, Unix seconds (Stripe `created`), ISO 8601 UTC, lower-case codes, API enum
values.
"""

from __future__ import annotations

import polars as pl

from backfill.contracts.model import ColumnSpec, NumberLocale
from backfill.validate import parse
from backfill.validate.rules import text_col, typed_col

__all__ = ["output_value", "typed_value"]


def _exp(col: ColumnSpec) -> pl.Expr:
    cur = text_col(col.currency or "")
    if col.currency_fallback:
        cur = pl.when(parse.blank(cur)).then(text_col(col.currency_fallback)).otherwise(cur)
    return parse.currency_exponent(cur)


def typed_value(col: ColumnSpec, *, locale: NumberLocale, tz: str) -> pl.Expr:
    """The typed value of `col` (null when empty or invalid), named `__v_<name>`."""
    t = text_col(col.name)
    if col.type == "money":
        plain = parse.normalise_number(t, locale)
        exp = _exp(col)
        v = pl.when(parse.number_scale(plain) <= exp).then(parse.money_minor_units(plain, exp))
    elif col.type == "decimal":
        v = parse.normalise_number(t, locale).cast(pl.Float64, strict=False)
    elif col.type == "int":
        s = t.str.strip_chars()
        v = pl.when(s.str.contains(r"^-?\d{1,18}$")).then(s.cast(pl.Int64, strict=False))
    elif col.type == "bool":
        s = t.str.strip_chars().str.to_lowercase()
        v = pl.when(s == "true").then(pl.lit(True)).when(s == "false").then(pl.lit(False))
    elif col.type == "datetime":
        _, _, v = parse.parse_datetime(t, col.formats, tz)
    else:
        v = t
    return v.alias(typed_col(col.name).meta.output_name())


def output_value(col: ColumnSpec, *, locale: NumberLocale) -> pl.Expr:
    """The value written to the valid file for `col`, under its canonical name."""
    t = text_col(col.name)
    v = typed_col(col.name)
    if col.type == "money":
        out = v if col.convert == "minor_units" else parse.normalise_number(t, locale)
    elif col.type == "decimal":
        out = parse.normalise_number(t, locale)
    elif col.type in ("int", "bool"):
        out = v
    elif col.type == "datetime":
        if col.convert == "unix_seconds":
            out = v.dt.epoch("s")
        elif col.convert == "iso_utc":
            out = v.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            out = t
    else:
        out = t
        if col.enum_map:
            key = t.str.strip_chars()
            mapping = dict(col.enum_map)
            if col.case_insensitive:
                key = key.str.to_lowercase()
                mapping = {k.lower(): val for k, val in mapping.items()}
            out = key.replace_strict(
                mapping, default=t.str.strip_chars().str.to_lowercase(), return_dtype=pl.String
            )
        if col.lower:
            out = out.str.strip_chars().str.to_lowercase()
    return out.alias(col.name)
