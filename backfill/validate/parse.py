"""Text -> typed values, checking the text's form first (polars 2.1 casts do not validate).

Traps this module exists for (issue 4): casting "29.905" to a 2-place decimal gives 29.90 even
with strict=True, "1e3" casts to a decimal, `strptime` rolls 23:59:60 over to the next day and
accepts "2024-1-5 1:2:3". So every value is matched against an exact pattern first: amounts
must be plain numbers with at most three significant decimals before they are read (through a
float, exactly: see values.py) and checked against the currency's exponent, and every datetime
field is range-checked before `strptime` sees it.
"""

from __future__ import annotations

import polars as pl

from backfill.contracts.currencies import THREE_DECIMAL, ZERO_DECIMAL
from backfill.contracts.model import DatetimeFormat, NumberLocale

__all__ = [
    "NUMBER_PATTERNS",
    "blank",
    "datetime_parts",
    "local_to_utc",
    "multiple_of",
    "normalise_number",
    "one_of",
    "parse_checked_datetime",
    "parse_datetime",
    "plain_number",
    "thousandths_per_minor_unit",
]

# ASCII digits: `\d` also matches other scripts' digits (Arabic-Indic, full-width), which no cast reads: such a
# value is reported as not a number, not as too large once its cast failed.
NUMBER_PATTERNS: dict[NumberLocale, str] = {
    "plain": r"^-?[0-9]+(\.[0-9]+)?$",
    "en": r"^-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?$",
    "de": r"^-?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?$",
}

_DT_PATTERNS: dict[DatetimeFormat, str] = {
    "ymd_hm": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$",
    "ymd_hms": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    "ymd_hms_frac": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?$",
    "iso_offset": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})$",
    "unix": r"^[0-9]{9,10}$",
}
_CANON = "%Y-%m-%d %H:%M:%S"


def blank(text: pl.Expr) -> pl.Expr:
    """True when a cell is empty (null or ""); contract columns are trimmed when read."""
    return text.is_null() | (text.str.len_bytes() == 0)


def one_of(e: pl.Expr, values: list[str] | list[bool]) -> pl.Expr:
    """`e.is_in(values)`, as an equality test for a single value (a comparison costs a few
    instructions a row, a set lookup a hash of the value). Null stays null."""
    if len(values) == 1:
        return e == values[0]
    return e.is_in(values)


def normalise_number(text: pl.Expr, locale: NumberLocale) -> pl.Expr:
    """Number text in the given locale -> plain `-1234.56` text (null if it does not match)."""
    return pl.when(text.str.contains(NUMBER_PATTERNS[locale])).then(plain_number(text, locale))


def plain_number(text: pl.Expr, locale: NumberLocale) -> pl.Expr:
    """Number text known to be in the locale's form -> plain `-1234.56` text (no check)."""
    if locale == "en":
        return text.str.replace_all(",", "", literal=True)
    if locale == "de":
        return text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    return text


def thousandths_per_minor_unit(code: pl.Expr) -> pl.Expr:
    """Thousandths of a major unit per minor unit, per row, from a lower-cased currency code:
    1000 for a zero-decimal currency, 1 for a three-decimal one, else 10 (two decimals).

    when/then with `is_in`, not `replace_strict`: polars 2.1's streaming engine cannot stream
    `replace`/`replace_strict` and would hold the whole file in memory.
    """
    return (
        pl.when(code.is_in(sorted(ZERO_DECIMAL)))
        .then(pl.lit(1000, pl.Int64))
        .when(code.is_in(sorted(THREE_DECIMAL)))
        .then(pl.lit(1, pl.Int64))
        .otherwise(pl.lit(10, pl.Int64))
    )


def multiple_of(value: pl.Expr, k: pl.Expr | int) -> pl.Expr:
    """`value % k == 0` for integers of magnitude at most 10**15 (every amount here: values
    are below 10**12 major units, in thousandths at most) and k in 1..1000, without an integer
    division (about 50 instructions a value; these are a few vectorised float operations).

    Exact: a multiple gives an integer quotient below 2**53, computed exactly; otherwise the
    quotient is at least 1/k from an integer, less half an ulp of a number below 10**15/k
    (at most 0.0001 for k = 1000, 0.008 for k = 10), so more than the 0.0005 allowed.
    """
    q = value.cast(pl.Float64) / k
    return (q - q.round()).abs() < 0.0005


def datetime_parts(
    text: pl.Expr, formats: tuple[DatetimeFormat, ...]
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Split datetime text by the declared formats.

    Returns:
        (matched, canon, offset_s, epoch): `matched` is true when a format's pattern matches;
        `canon` is `YYYY-MM-DD HH:MM:SS` wall-clock text; `offset_s` the UTC offset in seconds
        when the text carried one; `epoch` the Unix seconds for the `unix` format.
    """
    t = text
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
            tz = t.str.extract(r"(Z|[+-][0-9]{2}:?[0-9]{2})$", 1)
            sign = pl.when(tz.str.starts_with("-")).then(-1).otherwise(1)
            hh = tz.str.slice(1, 2).cast(pl.Int64, strict=False)
            mm = tz.str.replace(":", "", literal=True).str.slice(3, 2).cast(pl.Int64, strict=False)
            off = pl.when(tz == "Z").then(0).otherwise(sign * (hh * 3600 + mm * 60))
            offset = pl.when(hit).then(off).otherwise(offset)
        elif fmt == "unix":
            epoch = pl.when(hit).then(t.cast(pl.Int64, strict=False)).otherwise(epoch)
    return matched.fill_null(False), canon, offset, epoch


_VALID_FIELDS = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)


def local_to_utc(naive: pl.Expr, tz: str) -> pl.Expr:
    """Wall-clock datetimes in zone `tz` -> UTC (null for a local time that does not exist or
    is ambiguous)."""
    if tz == "UTC":
        return naive.dt.replace_time_zone("UTC")
    return naive.dt.replace_time_zone(
        tz, ambiguous="null", non_existent="null"
    ).dt.convert_time_zone("UTC")


def parse_checked_datetime(text: pl.Expr, tz: str) -> pl.Expr:
    """`YYYY-MM-DD HH:MM[:SS]` text whose form and field ranges are already checked (the gate)
    -> the UTC instant (null for 30 February or a local time skipped by DST). No regex: the
    two forms differ in length."""
    canon = pl.when(text.str.len_bytes() == 16).then(text + ":00").otherwise(text)
    # cache=False: export timestamps are nearly all distinct; the lookup cache only costs.
    return local_to_utc(
        canon.str.strptime(pl.Datetime("us"), _CANON, strict=False, cache=False), tz
    )


def parse_datetime(
    text: pl.Expr, formats: tuple[DatetimeFormat, ...], tz: str
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Parse datetime text to a UTC datetime.

    Returns:
        (format_ok, real, value): `format_ok` the text has a declared form; `real` the wall
        clock exists (no 23:59:60 or 24:00, no 30 February, no local time skipped by a DST
        change); `value` the instant in UTC (null when either is false).

    Every field is range-checked by a pattern before `strptime` (which would roll 23:59:60
    over to the next day); `strptime` itself returns null for a day the month does not have.
    """
    matched, canon, offset, epoch = datetime_parts(text, formats)
    fields_ok = canon.str.contains(_VALID_FIELDS)
    naive = pl.when(fields_ok).then(
        canon.str.strptime(pl.Datetime("us"), _CANON, strict=False, cache=False)
    )
    value: pl.Expr = local_to_utc(naive, tz)
    if any(f == "iso_offset" for f in formats):
        from_offset = (naive - pl.duration(seconds=offset)).dt.replace_time_zone("UTC")
        value = pl.when(offset.is_not_null()).then(from_offset).otherwise(value)
    if "unix" in formats:
        from_epoch = pl.from_epoch(epoch, time_unit="s").dt.replace_time_zone("UTC")
        value = pl.when(epoch.is_not_null()).then(from_epoch).otherwise(value)
    real = value.is_not_null()
    return matched, real, value
