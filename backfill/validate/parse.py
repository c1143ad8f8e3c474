"""Text -> typed values, checking the text's form first (polars 2.1 casts do not validate).

Traps this module exists for (issue 4): casting "29.905" to a 2-place decimal gives 29.90 even
with strict=True, "1e3" casts to a decimal, `strptime` rolls 23:59:60 over to the next day and
accepts "2024-1-5 1:2:3". So every value is matched against an exact pattern first, amounts are
converted to integer minor units with integer arithmetic (no float, no decimal cast), and a
parsed datetime is formatted back and compared with its text, which catches any roll-over.
"""

from __future__ import annotations

import polars as pl

from backfill.contracts.currencies import THREE_DECIMAL, ZERO_DECIMAL
from backfill.contracts.model import DatetimeFormat, NumberLocale

__all__ = [
    "NUMBER_PATTERNS",
    "blank",
    "currency_exponent",
    "datetime_parts",
    "money_minor_units",
    "normalise_number",
    "number_scale",
    "parse_datetime",
]

NUMBER_PATTERNS: dict[NumberLocale, str] = {
    "plain": r"^-?\d+(\.\d+)?$",
    "en": r"^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$",
    "de": r"^-?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$",
}
_MAX_INT_DIGITS = 15  # integer part of an amount; more cannot be held in minor units safely

_DT_PATTERNS: dict[DatetimeFormat, str] = {
    "ymd_hm": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$",
    "ymd_hms": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
    "ymd_hms_frac": r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$",
    "iso_offset": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$",
    "unix": r"^\d{9,10}$",
}
_CANON = "%Y-%m-%d %H:%M:%S"


def blank(text: pl.Expr) -> pl.Expr:
    """True when a cell is empty (null, "" or only spaces)."""
    return text.is_null() | (text.str.strip_chars() == "")


def normalise_number(text: pl.Expr, locale: NumberLocale) -> pl.Expr:
    """Number text in the given locale -> plain `-1234.56` text (null if it does not match)."""
    t = text.str.strip_chars()
    ok = t.str.contains(NUMBER_PATTERNS[locale])
    if locale == "en":
        norm = t.str.replace_all(",", "", literal=True)
    elif locale == "de":
        norm = t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        norm = t
    return pl.when(ok).then(norm)


def number_scale(plain: pl.Expr) -> pl.Expr:
    """Significant decimal places of plain number text (`29.900` -> 2)."""
    frac = plain.str.extract(r"\.(\d+)$", 1).fill_null("")
    return frac.str.strip_chars_end("0").str.len_chars().cast(pl.Int64)


def currency_exponent(code: pl.Expr) -> pl.Expr:
    """Minor-unit exponent per row from a currency-code column (2 unless listed)."""
    c = code.str.strip_chars().str.to_lowercase()
    return (
        pl.when(c.is_in(list(ZERO_DECIMAL)))
        .then(pl.lit(0, pl.Int64))
        .when(c.is_in(list(THREE_DECIMAL)))
        .then(pl.lit(3, pl.Int64))
        .otherwise(pl.lit(2, pl.Int64))
    )


def money_minor_units(plain: pl.Expr, exp: pl.Expr) -> pl.Expr:
    """Plain decimal text -> integer minor units for exponent `exp` (integer arithmetic only).

    The caller has checked the scale; digits beyond `exp` are zeros and are dropped. Null when
    the integer part is too long to convert.
    """
    neg = plain.str.starts_with("-")
    digits = plain.str.strip_prefix("-")
    int_txt = digits.str.extract(r"^(\d+)", 1)
    int_part = pl.when(int_txt.str.len_chars() <= _MAX_INT_DIGITS).then(
        int_txt.cast(pl.Int64, strict=False)
    )
    frac3 = pl.concat_str(
        [digits.str.extract(r"\.(\d+)$", 1).fill_null(""), pl.lit("000")]
    ).str.slice(0, 3)
    milli = int_part * 1000 + frac3.cast(pl.Int64, strict=False)
    factor = pl.when(exp == 0).then(1000).when(exp == 3).then(1).otherwise(10).cast(pl.Int64)
    minor = milli // factor
    return pl.when(neg).then(-minor).otherwise(minor)


def datetime_parts(
    text: pl.Expr, formats: tuple[DatetimeFormat, ...]
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Split datetime text by the declared formats.

    Returns:
        (matched, canon, offset_s, epoch): `matched` is true when a format's pattern matches;
        `canon` is `YYYY-MM-DD HH:MM:SS` wall-clock text; `offset_s` the UTC offset in seconds
        when the text carried one; `epoch` the Unix seconds for the `unix` format.
    """
    t = text.str.strip_chars()
    matched = pl.lit(False)
    canon: pl.Expr = pl.lit(None, pl.String)
    offset: pl.Expr = pl.lit(None, pl.Int64)
    epoch: pl.Expr = pl.lit(None, pl.Int64)
    for fmt in formats:
        hit = t.str.contains(_DT_PATTERNS[fmt])
        matched = matched | hit
        if fmt == "ymd_hm":
            canon = pl.when(hit).then(pl.concat_str([t, pl.lit(":00")])).otherwise(canon)
        elif fmt == "ymd_hms":
            canon = pl.when(hit).then(t).otherwise(canon)
        elif fmt == "ymd_hms_frac":
            canon = (
                pl.when(hit)
                .then(t.str.slice(0, 19).str.replace("T", " ", literal=True))
                .otherwise(canon)
            )
        elif fmt == "iso_offset":
            canon = (
                pl.when(hit)
                .then(t.str.slice(0, 19).str.replace("T", " ", literal=True))
                .otherwise(canon)
            )
            tz = t.str.extract(r"(Z|[+-]\d{2}:?\d{2})$", 1)
            sign = pl.when(tz.str.starts_with("-")).then(-1).otherwise(1)
            hh = tz.str.slice(1, 2).cast(pl.Int64, strict=False)
            mm = tz.str.replace(":", "", literal=True).str.slice(3, 2).cast(pl.Int64, strict=False)
            off = pl.when(tz == "Z").then(0).otherwise(sign * (hh * 3600 + mm * 60))
            offset = pl.when(hit).then(off).otherwise(offset)
        elif fmt == "unix":
            epoch = pl.when(hit).then(t.cast(pl.Int64, strict=False)).otherwise(epoch)
    return matched.fill_null(False), canon, offset, epoch


def parse_datetime(
    text: pl.Expr, formats: tuple[DatetimeFormat, ...], tz: str
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Parse datetime text to a UTC datetime.

    Returns:
        (format_ok, real, value): `format_ok` the text has a declared form; `real` the wall
        clock exists (no 23:59:60, no 30 February, no time skipped by a DST change); `value` the
        instant in UTC (null when either is false).
    """
    matched, canon, offset, epoch = datetime_parts(text, formats)
    naive = canon.str.strptime(pl.Datetime("us"), _CANON, strict=False)
    round_trip = naive.dt.strftime(_CANON) == canon
    local = naive.dt.replace_time_zone(
        tz, ambiguous="null", non_existent="null"
    ).dt.convert_time_zone("UTC")
    from_offset = (naive - pl.duration(seconds=offset)).dt.replace_time_zone("UTC")
    from_epoch = pl.from_epoch(epoch, time_unit="s").dt.replace_time_zone("UTC")
    value = (
        pl.when(epoch.is_not_null())
        .then(from_epoch)
        .when(offset.is_not_null() & round_trip)
        .then(from_offset)
        .when(round_trip)
        .then(local)
    )
    real = (epoch.is_not_null() | round_trip).fill_null(False) & value.is_not_null()
    return matched, real, value
