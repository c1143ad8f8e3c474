"""Typed values of contract columns, computed once per column in stages, and their output form.

Stage 0 (`stage_lower`): lower-cased text of the columns compared or written in lower case
(in the fast lane read by position from `stage_index` for case-insensitive enums). Stage 1
(`stage_one`): per currency column the lower-cased code and its thousandths per minor unit
(1000 / 10 / 1 for 0 / 2 / 3 decimals); per number column its plain text (locale separators
removed; null when the text is not a number); per datetime column whether the text has a
declared form and the parsed UTC instant. Then (`stage_numbers`, `stage_thousandths`) each
number read as a float once and each amount in thousandths. Stage 2 (`stage_two`): whether
amounts fit their currency, and the typed values `__v_<name>` (null whenever the text is
invalid, so cross-column rules need no re-checking). Rules read these columns instead of
re-deriving them, so each operation runs once per cell. `with_values` applies the stages, each
in a `with_columns` of its own (within one, the streaming engine would evaluate a shared
sub-expression once per use).
With `gated` columns (gate.py has checked their form) the fast lane reads them without regexes.

The output conversions turn typed values into what the destination expects: integer minor
units, Unix seconds (Stripe `created`), ISO 8601 UTC, lower-case codes, API enum values.
"""

from __future__ import annotations

import polars as pl

from backfill.contracts.currencies import ISK_WHOLE_UNITS
from backfill.contracts.model import ColumnSpec, Contract, NumberLocale
from backfill.validate import parse
from backfill.validate.rules import (
    cur_col,
    currency_columns,
    factor_col,
    fits_col,
    lower_col,
    lowered_columns,
    matched_col,
    plain_col,
    text_col,
    typed_col,
)

__all__ = [
    "MONEY_STAND_IN_RULES",
    "canonical_lower",
    "currency_key",
    "money_stand_ins",
    "output_value",
    "stage_lower",
    "stage_numbers",
    "stage_one",
    "stage_thousandths",
    "stage_two",
    "with_values",
]


def currency_key(col: ColumnSpec) -> str:
    """Name of the stage column holding a money column's currency (its column + fallback)."""
    return f"{col.currency}|{col.currency_fallback or ''}"


def stage_lower(
    contract: Contract, gated: frozenset[str] = frozenset(), *, fast: bool = False
) -> list[pl.Expr]:
    """Stage 0: the lower-cased text `__l_<name>` of every column compared or written in lower
    case (computed once: lower-casing costs a pass over the column). `fast`: the fast lane's
    stand-ins where it has them (`canonical_lower`)."""
    stand_ins = canonical_lower(contract) if fast else {}
    out = []
    for n in lowered_columns(contract, gated=gated):
        got = stand_ins.get(n)
        out.append((got[0] if got else text_col(n).str.to_lowercase()).alias(f"__l_{n}"))
    return out


def _indexed_enum(col: ColumnSpec) -> bool:
    """A case-insensitive enum of ASCII values: the fast lane finds its text's position among
    them (`stage_index`)."""
    return bool(col.enum) and col.case_insensitive and all(v and v.isascii() for v in col.enum)


def _spellings(col: ColumnSpec) -> list[str]:
    """An enum's values as the contract writes them, each once (in order)."""
    return list(dict.fromkeys(col.enum or ()))


def _index_col(name: str) -> pl.Expr:
    """Position of a column's text among its enum values as the contract writes them."""
    return pl.col(f"__i_{name}")


def stage_index(contract: Contract) -> list[pl.Expr]:
    """The fast lane's first stage: for each case-insensitive ASCII enum column, the position
    of its text among the values as the contract writes them (null for any other text: a
    value in another case is not canonical). One lookup per row, which the lower-casing
    stand-in and the output mapping then both read by position (a when/then chain costs a
    pass over the column per value)."""
    return [
        text_col(col.name)
        .cast(pl.Enum(_spellings(col)), strict=False)
        .to_physical()
        .alias(_index_col(col.name).meta.output_name())
        for col in contract.columns
        if _indexed_enum(col)
    ]


def canonical_lower(contract: Contract) -> dict[str, tuple[pl.Expr, pl.Expr | None]]:
    """Lower-casing without lower-casing, for values written the way exports write them.

    Column -> (its lower-cased text on rows written canonically, and when not None, the rows
    that are not: the fast lane must send those to the exact lane):

    - a currency column: its text as it is. Exports write codes in lower case, and a code in
      any other case takes the exact lane anyway: the gate (gate.py) only passes known
      lower-case codes in a currency column, or, where it cannot, the currency_code rule
      stays in the fast lane and fails any code that is not one.
    - a case-insensitive enum column (ASCII values): each value as the contract writes it
      mapped to its lower case by its position (`stage_index`), not by lower-casing (a few
      hundred instructions a row); a value in any other case is not canonical.
    """
    currencies = currency_columns(contract)
    out: dict[str, tuple[pl.Expr, pl.Expr | None]] = {}
    for col in contract.columns:
        t = text_col(col.name)
        if _indexed_enum(col):
            lower = pl.Series([v.lower() for v in _spellings(col)], dtype=pl.String)
            lowered = pl.lit(lower).gather(_index_col(col.name))
            # Not canonical: not blank, yet no spelling matched (read from the stage column:
            # an `is_in` over the text again would cost a lookup per row).
            out[col.name] = (lowered, ~parse.blank(t) & lower_col(col.name).is_null())
        elif col.name in currencies:
            out[col.name] = (t, None)
    return out


def with_values(
    lf: pl.LazyFrame,
    contract: Contract,
    *,
    locale: NumberLocale,
    tz: dict[str, str],
    gated: frozenset[str] = frozenset(),
    fast: bool = False,
) -> pl.LazyFrame:
    """`lf` (contract columns as trimmed text) with every stage column the rules read
    (`fast`: the fast lane's, see `stage_lower`)."""
    # One with_columns per stage: within one, the streaming engine evaluates a sub-expression
    # once per use (a float parse used four times costs four parses).
    if fast:
        lf = lf.with_columns(stage_index(contract))
    return (
        lf.with_columns(stage_lower(contract, gated, fast=fast))
        .with_columns(stage_one(contract, locale=locale, tz=tz, gated=gated))
        .with_columns(stage_numbers(contract, gated=gated, fast=fast))
        .with_columns(stage_thousandths(contract, gated=gated))
        .with_columns(stage_two(contract, gated=gated, fast=fast))
    )


def stage_one(
    contract: Contract,
    *,
    locale: NumberLocale,
    tz: dict[str, str],
    gated: frozenset[str] = frozenset(),
) -> list[pl.Expr]:
    """Per-column intermediates that only need the text.

    Columns in `gated` are known to have their form (gate.py): their number text is taken as
    it is and their datetimes parsed without a regex. Only use it on rows that passed the gate.
    """
    out: list[pl.Expr] = []
    seen: set[str] = set()
    for col in contract.columns:
        if col.type == "money" and currency_key(col) not in seen:
            key = currency_key(col)
            seen.add(key)
            code = lower_col(col.currency or "")
            if col.currency_fallback:
                fallback = lower_col(col.currency_fallback)
                code = pl.when(parse.blank(code)).then(fallback).otherwise(code)
            out += [
                code.alias(cur_col(key).meta.output_name()),
                parse.thousandths_per_minor_unit(code).alias(factor_col(key).meta.output_name()),
            ]
        if col.type in ("money", "decimal"):
            number = parse.plain_number if col.name in gated else parse.normalise_number
            out.append(
                number(text_col(col.name), locale).alias(plain_col(col.name).meta.output_name())
            )
        if col.type == "datetime" and col.name in gated:
            out += [
                pl.lit(True).alias(matched_col(col.name).meta.output_name()),
                parse.parse_checked_datetime(text_col(col.name), tz.get(col.name, "UTC")).alias(
                    typed_col(col.name).meta.output_name()
                ),
            ]
        elif col.type == "datetime":
            matched, _, value = parse.parse_datetime(
                text_col(col.name), col.formats, tz.get(col.name, "UTC")
            )
            out += [
                matched.alias(matched_col(col.name).meta.output_name()),
                value.alias(typed_col(col.name).meta.output_name()),
            ]
    return out


_SIG3 = r"^-?\d+(\.\d{1,3}0*)?$"
"""Number text with at most three significant decimals (trailing zeros do not count)."""
MAX_MAJOR = 1e12
"""Amounts at or above this (in major units) are rejected as too large: below it an amount
with at most three decimals, read as a float and multiplied by 1000, is within 0.13 of an
integer below 2**53, so rounding gives the exact thousandths (no decimal arithmetic needed)."""


def _number_col(name: str) -> pl.Expr:
    """A money/decimal column's plain text as a float (stage `numbers`)."""
    return pl.col(f"__n_{name}")


def _strict_factor_col(key: str) -> pl.Expr:
    """Thousandths a currency key's amounts must be a multiple of to pass every amount rule:
    1000 for zero-decimal currencies and ISK (whole krónur), else 10 (stage `numbers`)."""
    return pl.col(f"__kk_{key}")


MONEY_STAND_IN_RULES = ("money_scale", "three_decimal_last_digit", "isk_fraction")
"""The amount rules `money_stand_ins` decides together, per gated money column."""


def money_stand_ins(contract: Contract, gated: frozenset[str]) -> dict[str, pl.Expr]:
    """Gated money column -> one test that is true whenever one of `MONEY_STAND_IN_RULES`
    could fail on it (the fast lane's values: `with_values(fast=True)`).

    An amount passes all three when its thousandths are a multiple of its currency's
    strictest multiple: 1000 for a zero-decimal currency (no decimals) and for ISK (whole
    krónur), 10 otherwise (two decimals; for a three-decimal currency, a last digit of 0).
    Every currency's own factor divides that multiple, so a row that passes also fits its
    currency. The test may be true where no rule fails (an ISK amount with decimals is a
    warning only for ISK): such rows take the exact lane, which decides. Null (no amount)
    is a pass, as for the rules.
    """
    return {
        col.name: ~parse.multiple_of(_milli_col(col.name), _strict_factor_col(currency_key(col)))
        for col in contract.columns
        if col.type == "money" and col.name in gated
    }


def _milli_col(name: str) -> pl.Expr:
    """An amount in thousandths of a major unit (stage `thousandths`)."""
    return pl.col(f"__t_{name}")


def stage_numbers(
    contract: Contract, *, gated: frozenset[str] = frozenset(), fast: bool = False
) -> list[pl.Expr]:
    """Each money/decimal column's plain text read as a float (once: every later use reads
    the column); `fast`: each gated amount's currency key's strictest multiple (see
    `money_stand_ins`)."""
    out: list[pl.Expr] = []
    seen: set[str] = set()
    for col in contract.columns:
        key = currency_key(col)
        if fast and col.type == "money" and col.name in gated and key not in seen:
            seen.add(key)
            strict = pl.when((factor_col(key) == 1000) | (cur_col(key) == ISK_WHOLE_UNITS))
            out.append(
                strict.then(pl.lit(1000, pl.Int64))
                .otherwise(pl.lit(10, pl.Int64))
                .alias(_strict_factor_col(key).meta.output_name())
            )
        if col.type in ("money", "decimal"):
            x = plain_col(col.name).cast(pl.Float64, strict=False)
            out.append(x.alias(_number_col(col.name).meta.output_name()))
    return out


def stage_thousandths(contract: Contract, *, gated: frozenset[str] = frozenset()) -> list[pl.Expr]:
    """Each amount in thousandths (an Int64; null when at or above MAX_MAJOR).

    A gated amount (at most twelve integer digits: gate.py) is below MAX_MAJOR on every row
    that passed the gate, the only rows that use it, so it needs no range test.
    """
    out: list[pl.Expr] = []
    for col in contract.columns:
        if col.type != "money":
            continue
        x = _number_col(col.name)
        milli = (x * 1000).round().cast(pl.Int64, strict=False)
        if col.name not in gated:
            milli = pl.when(x.abs() < MAX_MAJOR).then(milli)
        out.append(milli.alias(_milli_col(col.name).meta.output_name()))
    return out


def _fits(col: ColumnSpec, *, checked: bool) -> pl.Expr:
    """Whether an amount's significant decimals fit its currency (true for an amount too large
    to convert: it is reported as too large instead).

    The factor is 1000 / 10 / 1 for a currency with 0 / 2 / 3 decimals: the amount fits when it
    has at most three significant decimals and its thousandths are a multiple of the factor.
    No when/then chains: each level of one is a pass over the whole column.
    """
    milli = _milli_col(col.name)
    fits = milli.is_null() | parse.multiple_of(milli, factor_col(currency_key(col)))
    if not checked:  # `checked`: the gate has seen at most three significant decimals
        fits = plain_col(col.name).str.contains(_SIG3) & fits
    return fits


def stage_two(
    contract: Contract, *, gated: frozenset[str] = frozenset(), fast: bool = False
) -> list[pl.Expr]:
    """Typed values (and whether amounts fit their currency) from the stages before (`gated`:
    as in `stage_one`; `fast`: a gated amount's minor units without `fits`, the fast lane
    testing it with `money_stand_ins` instead)."""
    out: list[pl.Expr] = []
    for col in contract.columns:
        name = typed_col(col.name).meta.output_name()
        t = text_col(col.name)
        if col.type == "money" and fast and col.name in gated:
            # No `fits` here: a row whose amount does not fit fails `money_stand_ins`.
            out.append((_milli_col(col.name) // factor_col(currency_key(col))).alias(name))
        elif col.type == "money":
            fits = _fits(col, checked=col.name in gated)
            minor = _milli_col(col.name) // factor_col(currency_key(col))
            out += [
                fits.alias(fits_col(col.name).meta.output_name()),
                pl.when(fits).then(minor).alias(name),
            ]
        elif col.type == "decimal":
            out.append(_number_col(col.name).alias(name))
        elif col.type == "int" and col.name in gated:
            out.append(t.cast(pl.Int64, strict=False).alias(name))
        elif col.type == "int":
            out.append(
                pl.when(t.str.contains(r"^-?[0-9]{1,18}$"))
                .then(t.cast(pl.Int64, strict=False))
                .alias(name)
            )
        elif col.type == "bool" and col.name in gated:
            # The gate has seen true or false in some case: the first letter tells which.
            out.append(
                pl.when(parse.blank(t))
                .then(None)
                .otherwise(t.str.starts_with("t") | t.str.starts_with("T"))
                .alias(name)
            )
        elif col.type == "bool":
            s = lower_col(col.name)
            out.append(
                pl.when(s == "true")
                .then(pl.lit(True))
                .when(s == "false")
                .then(pl.lit(False))
                .alias(name)
            )
        elif col.type == "string":
            out.append(t.alias(name))
    return out


def output_value(col: ColumnSpec, *, fast: bool = False) -> pl.Expr:
    """The value written to the valid file for `col`, under its canonical name (`fast`: from
    the fast lane's stage columns, `with_values(fast=True)`)."""
    t = text_col(col.name)
    v = typed_col(col.name)
    if col.type == "money":
        out = v if col.convert == "minor_units" else plain_col(col.name)
    elif col.type == "decimal":
        out = plain_col(col.name)
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
        if col.enum_map and fast and _indexed_enum(col):
            # By position: the mapped value of each value as the contract writes it (the
            # first key that matches it in any case, as the chain below), else its lower case.
            mapping: dict[str, str] = {}
            for k, val in col.enum_map.items():
                mapping.setdefault(k.lower(), val)
            values = [mapping.get(v.lower(), v.lower()) for v in _spellings(col)]
            out = pl.lit(pl.Series(values, dtype=pl.String)).gather(_index_col(col.name))
        elif col.enum_map:
            # A when/then chain, not replace_strict (which the streaming engine cannot stream).
            key = lower_col(col.name) if col.case_insensitive else t
            mapped: pl.Expr | pl.When | pl.Then = pl
            for k, val in col.enum_map.items():
                mapped = mapped.when(key == (k.lower() if col.case_insensitive else k)).then(
                    pl.lit(val)
                )  # type: ignore[union-attr]
            out = mapped.otherwise(lower_col(col.name))  # type: ignore[union-attr]
        elif col.lower:
            out = lower_col(col.name)
        elif col.enum and col.case_insensitive and not fast:
            # Spelled as the contract spells it, whatever the case in the export ('credit' is
            # shipped 'CREDIT'). Fast-lane rows are spelled so already: a value in another case
            # takes the exact lane.
            spelled: dict[str, str] = {}
            for value in _spellings(col):
                spelled.setdefault(value.lower(), value)
            chain: pl.Expr | pl.When | pl.Then = pl
            for low, value in spelled.items():
                chain = chain.when(lower_col(col.name) == low).then(pl.lit(value))  # type: ignore[union-attr]
            out = chain.otherwise(t)  # type: ignore[union-attr]
    return out.alias(col.name)
