"""Validation rules as values: one small function per rule, each returning a named `pl.Expr`.

A `Check` is a rule applied to one column: `failed` is a boolean expression (true = the row
breaks the rule, never null). Column rules read the column's text; cross-column rules read the
typed values (`typed` expressions, null when the text is invalid, so a bad amount is reported
once, by its own rule, and not again by every rule that uses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from backfill.contracts.currencies import ISK_WHOLE_UNITS, KNOWN_CURRENCIES
from backfill.contracts.model import ColumnSpec, Contract, Level, RuleSpec, UniqueSpec
from backfill.validate import parse

__all__ = [
    "Check",
    "ColumnEnv",
    "build_checks",
    "cur_col",
    "currency_columns",
    "factor_col",
    "fits_col",
    "lower_col",
    "lowered_columns",
    "matched_col",
    "plain_col",
    "text_col",
    "typed_col",
    "unique_value",
]

_SCIENTIFIC = r"^[+-]?\d+([.,]\d+)?[eE][+-]?\d+$"
_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def text_col(name: str) -> pl.Expr:
    """The raw text of canonical column `name` in the working frame."""
    return pl.col(name)


def typed_col(name: str) -> pl.Expr:
    """The typed value of canonical column `name` (stage two, or stage one for datetimes)."""
    return pl.col(f"__v_{name}")


def lower_col(name: str) -> pl.Expr:
    """Lower-cased text of `name` (stage one; for case-insensitive comparisons)."""
    return pl.col(f"__l_{name}")


def plain_col(name: str) -> pl.Expr:
    """Number text of `name` without locale separators (null when not a number)."""
    return pl.col(f"__p_{name}")


def fits_col(name: str) -> pl.Expr:
    """Whether amount `name` has no more significant decimals than its currency allows (also
    true for a number too large to convert: that is reported as too large)."""
    return pl.col(f"__s_{name}")


def matched_col(name: str) -> pl.Expr:
    """Whether datetime text `name` has one of its declared forms."""
    return pl.col(f"__m_{name}")


def cur_col(key: str) -> pl.Expr:
    """Lower-cased currency code for a money column's currency key."""
    return pl.col(f"__c_{key}")


def factor_col(key: str) -> pl.Expr:
    """Thousandths of a major unit per minor unit for a money column's currency key: 1000 /
    10 / 1 for a currency with 0 / 2 / 3 decimals."""
    return pl.col(f"__k_{key}")


def currency_columns(contract: Contract) -> frozenset[str]:
    """Columns holding the currency code of some money column."""
    names = {c.currency for c in contract.columns if c.currency}
    names |= {c.currency_fallback for c in contract.columns if c.currency_fallback}
    return frozenset(n for n in names if n)


def _ckey(col: ColumnSpec) -> str:
    return f"{col.currency}|{col.currency_fallback or ''}"


@dataclass(frozen=True)
class Check:
    """One rule applied to one column."""

    rule: str
    column: str
    """Header as found in the file (canonical name when the column is absent)."""
    level: Level
    failed: pl.Expr
    """True when the row breaks the rule (never null), named `__chk:<rule>:<column>`."""
    value: pl.Expr
    """Text shown in the rejects/warnings file."""
    message: str
    raw: pl.Expr
    """`failed` before its nulls are read as passes (null where the rule cannot tell): an
    `any_horizontal` over several of these, null-filled once, says whether any failed."""


@dataclass(frozen=True)
class ColumnEnv:
    """What the rules of one column need to know about the file being read."""

    header: dict[str, str]
    """Canonical name -> header found in the file."""
    tz: dict[str, str]
    """Canonical datetime column -> IANA zone of its wall-clock values."""
    locale: str
    now: datetime
    duplicated: dict[str, pl.Series] = field(default_factory=dict)
    """Unique-rule id -> values shared by more than one identity (from the duplicates pass)."""

    def label(self, name: str) -> str:
        """Header to report for canonical column `name`."""
        return self.header.get(name, name)


def _named(expr: pl.Expr, rule: str, column: str) -> pl.Expr:
    return expr.fill_null(False).alias(f"__chk:{rule}:{column}")


def _check(
    env: ColumnEnv,
    col: ColumnSpec,
    rule: str,
    failed: pl.Expr,
    message: str,
    level: Level | None = None,
) -> Check:
    label = env.label(col.name)
    return Check(
        rule,
        label,
        level or col.level,
        _named(failed, rule, label),
        text_col(col.name),
        message,
        failed,
    )


def rule_required_value(env: ColumnEnv, col: ColumnSpec) -> Check:
    """A non-nullable column is empty."""
    return _check(
        env,
        col,
        "required_value",
        parse.blank(text_col(col.name)),
        f"{env.label(col.name)} is empty",
        "error",
    )


def rule_excel_scientific(env: ColumnEnv, col: ColumnSpec) -> Check:
    """A long digit string was turned into `9.16722E+11` by Excel."""
    failed = text_col(col.name).str.contains(_SCIENTIFIC)
    return _check(
        env,
        col,
        "excel_scientific",
        failed,
        f"{env.label(col.name)} looks mangled by Excel (scientific notation); re-export without opening in Excel",
        "error",
    )


def rule_pattern(env: ColumnEnv, col: ColumnSpec) -> Check:
    """The value does not match the column's pattern."""
    t = text_col(col.name)
    failed = ~parse.blank(t) & ~t.str.contains(col.pattern or "")
    return _check(
        env, col, "pattern", failed, f"{env.label(col.name)} does not match {col.pattern}"
    )


def rule_enum(env: ColumnEnv, col: ColumnSpec) -> Check:
    """The value is not one of the allowed values."""
    t = text_col(col.name)
    allowed = list(col.enum)
    if col.case_insensitive:
        t, allowed = lower_col(col.name), [a.lower() for a in allowed]
    failed = ~parse.blank(text_col(col.name)) & ~t.is_in(allowed)
    return _check(
        env,
        col,
        "enum",
        failed,
        f"{env.label(col.name)} is not one of {', '.join(col.enum)}",
        col.unknown_enum_level or col.level,
    )


def rule_currency_code(env: ColumnEnv, col: ColumnSpec) -> Check:
    """A currency column holds a code that is not a known ISO 4217 code."""
    failed = ~parse.blank(text_col(col.name)) & ~lower_col(col.name).is_in(sorted(KNOWN_CURRENCIES))
    return _check(
        env,
        col,
        "currency_code",
        failed,
        f"{env.label(col.name)} is not a known ISO 4217 currency code",
        "error",
    )


def rule_number_format(env: ColumnEnv, col: ColumnSpec) -> Check:
    """A money/decimal value is not a number in the contract's locale (`1e3`, `12,50` in plain)."""
    failed = ~parse.blank(text_col(col.name)) & plain_col(col.name).is_null()
    return _check(
        env,
        col,
        "number_format",
        failed,
        f"{env.label(col.name)} is not a number in locale {env.locale}",
    )


def rule_money_scale(env: ColumnEnv, col: ColumnSpec) -> Check:
    """More decimal places than the currency has (`29.905` USD, `12.5` JPY)."""
    failed = plain_col(col.name).is_not_null() & ~fits_col(col.name)
    return _check(
        env,
        col,
        "money_scale",
        failed,
        f"{env.label(col.name)} has more decimal places than its currency allows",
    )


def rule_money_range(env: ColumnEnv, col: ColumnSpec) -> Check:
    """The amount is too large to convert to minor units."""
    failed = plain_col(col.name).is_not_null() & typed_col(col.name).is_null() & fits_col(col.name)
    return _check(env, col, "money_range", failed, f"{env.label(col.name)} is too large")


def rule_negative(env: ColumnEnv, col: ColumnSpec) -> Check:
    """A negative amount where only positive ones are allowed."""
    failed = typed_col(col.name) < 0
    return _check(env, col, "negative", failed, f"{env.label(col.name)} is negative")


def rule_minimum(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Below the column's minimum."""
    v = typed_col(col.name)
    # Money minimums are in minor units (the contracts only use 0).
    return _check(
        env,
        col,
        "below_minimum",
        v < col.minimum,
        f"{env.label(col.name)} is below {col.minimum:g}",
        col.min_level,
    )  # type: ignore[operator]


def rule_maximum(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Above the column's maximum."""
    return _check(
        env,
        col,
        "above_maximum",
        typed_col(col.name) > col.maximum,
        f"{env.label(col.name)} is above {col.maximum:g}",
    )  # type: ignore[operator]


def rule_three_decimal(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Three-decimal currencies: Stripe needs the last minor digit to be 0."""
    failed = (factor_col(_ckey(col)) == 1) & ~parse.multiple_of(typed_col(col.name), 10)
    return _check(
        env,
        col,
        "three_decimal_last_digit",
        failed,
        f"{env.label(col.name)}: three-decimal amount whose last digit is not 0",
        "warning",
    )


def rule_isk_whole(env: ColumnEnv, col: ColumnSpec) -> Check:
    """ISK amounts must be whole krónur."""
    failed = (cur_col(_ckey(col)) == ISK_WHOLE_UNITS) & ~parse.multiple_of(typed_col(col.name), 100)
    return _check(
        env,
        col,
        "isk_fraction",
        failed,
        f"{env.label(col.name)}: ISK amount with a fraction of a króna",
        "warning",
    )


def rule_int_format(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Not a whole number (or too large)."""
    t = text_col(col.name)
    failed = ~parse.blank(t) & typed_col(col.name).is_null()
    return _check(
        env,
        col,
        "int_format",
        failed,
        f"{env.label(col.name)} is not a whole number of at most 18 digits",
    )


def rule_bool_format(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Not true/false (any case)."""
    t = text_col(col.name)
    failed = ~parse.blank(t) & typed_col(col.name).is_null()
    return _check(env, col, "bool_format", failed, f"{env.label(col.name)} is not true/false")


def rule_datetime_format(env: ColumnEnv, col: ColumnSpec) -> Check:
    """The text is not in one of the declared datetime forms (`8/6/2026 12:00`, `2024-1-5`)."""
    t = text_col(col.name)
    return _check(
        env,
        col,
        "datetime_format",
        ~parse.blank(t) & ~matched_col(col.name),
        f"{env.label(col.name)} is not in the form {' or '.join(col.formats)}",
    )


def rule_datetime_invalid(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Right form, no single instant: 23:59:60, 30 February, a local time skipped by DST, or
    one that occurs twice (the hour repeated when clocks go back: which one is not known)."""
    t = text_col(col.name)
    failed = ~parse.blank(t) & matched_col(col.name) & typed_col(col.name).is_null()
    return _check(
        env,
        col,
        "datetime_invalid",
        failed,
        f"{env.label(col.name)} is not one real date/time in {env.tz.get(col.name, 'UTC')}: "
        "no such date or time, or a local time that clocks skip or repeat",
    )


def rule_datetime_future(env: ColumnEnv, col: ColumnSpec) -> Check:
    """In the future."""
    failed = typed_col(col.name) > pl.lit(env.now).dt.replace_time_zone("UTC")
    return _check(env, col, "datetime_future", failed, f"{env.label(col.name)} is in the future")


def rule_datetime_too_early(env: ColumnEnv, col: ColumnSpec) -> Check:
    """Before the earliest plausible date."""
    lo = datetime.fromisoformat(col.not_before or "1970-01-01").replace(tzinfo=UTC)
    failed = typed_col(col.name) < pl.lit(lo).dt.replace_time_zone("UTC")
    return _check(
        env, col, "datetime_too_early", failed, f"{env.label(col.name)} is before {col.not_before}"
    )


def column_checks(env: ColumnEnv, col: ColumnSpec, *, is_currency: bool) -> list[Check]:
    """Every check of one column, most specific first."""
    out: list[Check] = []
    if not col.nullable:
        out.append(rule_required_value(env, col))
    if col.no_scientific:
        out.append(rule_excel_scientific(env, col))
    if col.pattern:
        out.append(rule_pattern(env, col))
    if col.enum:
        out.append(rule_enum(env, col))
    if is_currency:
        out.append(rule_currency_code(env, col))
    if col.type in ("money", "decimal"):
        out.append(rule_number_format(env, col))
    if col.type == "money":
        out += [rule_money_scale(env, col), rule_money_range(env, col)]
        if not col.signed:
            out.append(rule_negative(env, col))
        out += [rule_three_decimal(env, col), rule_isk_whole(env, col)]
    if col.type == "int":
        out.append(rule_int_format(env, col))
    if col.type == "bool":
        out.append(rule_bool_format(env, col))
    if col.type == "datetime":
        out += [rule_datetime_format(env, col), rule_datetime_invalid(env, col)]
        if col.not_future:
            out.append(rule_datetime_future(env, col))
        if col.not_before:
            out.append(rule_datetime_too_early(env, col))
    if col.type in ("money", "decimal", "int"):
        if col.type == "decimal" and not col.signed:
            out.append(rule_negative(env, col))
        if col.minimum is not None:
            out.append(rule_minimum(env, col))
        if col.maximum is not None:
            out.append(rule_maximum(env, col))
    return out


def _when(rule: RuleSpec, contract: Contract) -> pl.Expr:
    cond = pl.lit(True)
    for w in rule.when:
        spec = contract.column(w.column)
        vals = [v.lower() for v in w.values]
        if spec.type == "bool":  # the typed value, compared as a boolean
            flags = [v == "true" for v in vals if v in ("true", "false")]
            hit = parse.one_of(typed_col(w.column), flags) if flags else pl.lit(False)
        else:
            hit = parse.one_of(lower_col(w.column), [v for v in vals if v] or vals)
        hit = hit.fill_null(False)
        if "" in vals:
            hit = hit | parse.blank(text_col(w.column))
        cond = cond & hit
    return cond


def _value(name: str, contract: Contract) -> pl.Expr:
    return typed_col(name) if contract.column(name).type != "string" else text_col(name)


def cross_check(env: ColumnEnv, rule: RuleSpec, contract: Contract) -> Check:
    """A cross-column rule of the contract as a `Check`."""
    when = _when(rule, contract)
    default = rule.result if rule.kind == "difference" else rule.left
    first = rule.column or default or (rule.columns[0] if rule.columns else "")
    if rule.kind == "compare":
        left = _value(rule.left or "", contract)
        right = pl.lit(rule.value) if rule.right is None else _value(rule.right, contract)
        if rule.date_only:
            left, right = left.dt.date(), right.dt.date()
        if rule.tolerance and rule.op == "==":
            failed = (left - right).abs() > rule.tolerance + 1e-9
        else:
            failed = ~_OPS[rule.op or "=="](left, right)
    elif rule.kind == "difference":
        res, lhs, rhs = (_value(x or "", contract) for x in (rule.result, rule.left, rule.right))
        failed = (res - (lhs - rhs)).abs() > rule.tolerance + 1e-9
    elif rule.kind == "required_if":
        cond = _OPS[rule.op or ">"](_value(rule.left or "", contract), pl.lit(rule.value))
        failed = cond & parse.blank(text_col(rule.column or ""))
    elif rule.kind == "any_present":
        failed = pl.all_horizontal([parse.blank(text_col(c)) for c in rule.columns])
    elif rule.kind == "both_or_neither":
        present = [~parse.blank(text_col(c)) for c in rule.columns]
        failed = pl.any_horizontal(present) & ~pl.all_horizontal(present)
    else:  # forbid: the `when` conditions themselves are the failure
        failed = pl.lit(True)
    label = env.label(first)
    value = text_col(first)
    return Check(
        rule.id,
        label,
        rule.level,
        _named(when & failed, rule.id, label),
        value,
        rule.message,
        when & failed,
    )


def unique_value(spec: UniqueSpec) -> pl.Expr:
    """The normalised value a unique rule compares (trimmed, maybe lower-cased; null if blank)."""
    parts = []
    for c in spec.columns:
        t = lower_col(c) if spec.case_insensitive else text_col(c)
        parts.append(pl.when(parse.blank(text_col(c))).then(None).otherwise(t))
    return pl.concat_str(parts, separator="\x1f") if len(parts) > 1 else parts[0]


def unique_check(env: ColumnEnv, spec: UniqueSpec) -> Check:
    """A value that must be unique is shared with another identity (found by the duplicates pass)."""
    dup = env.duplicated.get(spec.id, pl.Series(dtype=pl.String))
    label = env.label(spec.columns[0])
    failed = unique_value(spec).is_in(dup.implode())
    value = pl.concat_str([text_col(c).fill_null("") for c in spec.columns], separator=" | ")
    return Check(
        spec.id, label, spec.level, _named(failed, spec.id, label), value, spec.message, failed
    )


def lowered_columns(contract: Contract, *, gated: frozenset[str] = frozenset()) -> list[str]:
    """Columns compared case-insensitively somewhere (their `__l_` column is computed once).

    A gated bool column (gate.py) is read without lower-casing, so it is left out unless
    something else compares it."""
    names = {
        c.name
        for c in contract.columns
        if (c.enum and c.case_insensitive)
        or c.lower
        or (c.type == "bool" and c.name not in gated)
        or (c.enum_map and c.case_insensitive)
    }
    names |= currency_columns(contract)
    # (`_when` reads a bool column's typed value, not its text)
    names |= {
        w.column for r in contract.rules for w in r.when if contract.column(w.column).type != "bool"
    }
    names |= {e.column for e in contract.exclude}
    names |= {c for u in contract.unique if u.case_insensitive for c in u.columns}
    return [c.name for c in contract.columns if c.name in names]


def build_checks(env: ColumnEnv, contract: Contract) -> list[Check]:
    """All checks of a contract in evaluation order: columns first, then cross-column rules."""
    currencies = currency_columns(contract)
    checks: list[Check] = []
    # Currency columns first: an amount's exponent depends on them.
    ordered = sorted(contract.columns, key=lambda c: c.name not in currencies)
    for col in ordered:
        checks += column_checks(env, col, is_currency=col.name in currencies)
    checks += [cross_check(env, r, contract) for r in contract.rules]
    checks += [unique_check(env, u) for u in contract.unique]
    return checks
