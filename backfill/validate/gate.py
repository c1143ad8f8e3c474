"""The fast gate: one regex that stands in for the text-form rules of every column of a row.

Matching a regex costs a few hundred instructions per call whatever the length of the text, so
checking twenty short cells with twenty regexes costs far more than checking a whole row once.
The gate is one anchored pattern built from each column's own form, in two shapes: over a raw
CSV line (`line_pattern`: the parts at their header positions joined by commas; the structure
pass runs it on every line), or over the row's cells joined by `SEP` (`Gate.ok`, used when a
file gets no line gate). The parts:

- a string column's contract `pattern` (anchored with `^...$`, and free of constructs that
  could match across a separator); a currency column (one that money columns take their
  currency from): the known ISO 4217 codes its pattern allows, in lower case,
- a money column: a number without thousands separators, with at most twelve integer digits
  and three significant decimals (every amount that passes then converts exactly through a
  float, see values.py, and is never too large); not for the `de` locale, whose decimal comma
  is a CSV delimiter,
- a decimal column: such a number with any digits; an int column: up to 18 digits,
- numbers carry no minus sign where a negative value fails a rule (an unsigned column, or a
  minimum of at least 0): such values take the exact lane,
- a datetime column declared as `ymd_hm` and/or `ymd_hms`: the form with every field in range,
- a bool column: true/false in any case; a string column with an enum (ASCII values): one of
  them (in any ASCII case when the column is case-insensitive: `(?i-u)`, since Unicode case
  folding would also match the Kelvin sign for k or a long s for s, which the rule rejects),
- any other column: text without whitespace at either end.

The part of a nullable column also accepts an empty cell; a non-nullable column's does not
(it decides `required_value`). Apart from a pattern that admits whitespace, no part admits
whitespace at either end of a cell, so on a row that passes, trimming would change nothing: the
fast lane reads those columns untrimmed (`Gate.trimmed`).

The gate is conservative by construction: when it matches, none of the rules it covers
(`Gate.covered`) can fail, so those rules need not be evaluated on that row, and the row's
typed values may be computed the cheap way (values.py, `gated`). A row that does not match is
not rejected by the gate: it goes to the exact evaluation (engine.py), which names the rule that
fails, or finds none (a value holding `SEP`, say) and keeps the row as valid.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import polars as pl

from backfill.contracts.currencies import KNOWN_CURRENCIES
from backfill.contracts.model import ColumnSpec, Contract, NumberLocale
from backfill.validate.rules import currency_columns, text_col

__all__ = [
    "SEP",
    "Gate",
    "build_gate",
    "gate_part",
    "line_pattern",
    "pattern_body",
    "whitespace_free",
]

SEP = "\x1f"
"""ASCII unit separator: joins the cells for `Gate.ok` (a cell holding it fails the gate)."""

_INT = r"[0-9]{1,18}"
# Numbers without thousands separators, "." for decimals: the form both the `plain` and the
# `en` locale accept (an `en` amount with separators is quoted in a CSV line, and takes the
# exact lane). No part for `de`: its decimal comma would need quoting too.
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_MONEY = r"[0-9]{1,12}(?:\.[0-9]{1,3}0*)?"
_GATED_LOCALES = frozenset({"plain", "en"})
_DATE_HM = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]) (?:[01][0-9]|2[0-3]):[0-5][0-9]"
_SECONDS = r":[0-5][0-9]"
CHEAP_DATETIME_FORMATS = frozenset({"ymd_hm", "ymd_hms"})
"""Datetime forms the gate checks (and values.py then parses without a regex)."""


@dataclass(frozen=True)
class Gate:
    """The gate of one contract."""

    ok: pl.Expr
    """True when the row's gated cells all have their form (never null)."""
    columns: frozenset[str]
    """Canonical names of the gated columns."""
    covered: frozenset[tuple[str, str]]
    """(rule, canonical column) pairs the gate decides: they cannot fail on a row that passes."""
    trimmed: frozenset[str]
    """Columns whose text cannot start or end with whitespace on a row that passes (so they
    need no trimming there)."""


_FORBIDDEN = SEP + ',"\x00'
"""Characters no gate part may match: they delimit the cells (the separator of the joined row,
and the comma and quote of a CSV line), so a part matching one could split a row differently;
and NUL, so a line holding one misses the gate (the structure pass rejects it: `nul_byte`)."""
_UNSAFE_ESCAPES = frozenset("DWSPpxuUBbAzZ")
_QUANTIFIER = re.compile(r"\{\d+(,\d*)?\}")


def _set_syntax(content: str) -> bool:
    """A class body using nesting, POSIX classes or set operations (escaped characters aside)."""
    plain = re.sub(r"\\.", "", content)
    return any(tok in plain for tok in ("[", "&&", "--", "~~"))


def _positive_class_ok(content: str) -> bool:
    """A `[...]` class (not negated) that cannot match a forbidden character.

    Membership is tested with Python's `re`, which reads plain classes (ranges, escapes) as the
    Rust engine does; POSIX classes, nesting and set operations (which it reads differently)
    are refused.
    """
    if _set_syntax(content) or "\\p" in content or "\\P" in content:
        return False
    try:
        rx = re.compile(f"[{content}]")
    except re.error:
        return False
    return not any(rx.match(ch) for ch in _FORBIDDEN)


def _ascii_digits(content: str) -> str:
    """A positive class body with `\\d` narrowed to `0-9`."""
    out, i = [], 0
    while i < len(content):
        pair = content[i : i + 2]
        if pair == "\\d":
            out.append("0-9")
            i += 2
        elif pair.startswith("\\"):
            out.append(pair)
            i += 2
        else:
            out.append(content[i])
            i += 1
    return "".join(out)


def pattern_body(pattern: str) -> str | None:
    """The body of a `^...$` pattern that is safe to embed between cell delimiters, else None.

    Safe: anchored exactly at both ends and nowhere else, no inline flags, nothing that could
    match a delimiter (`_FORBIDDEN`): no `.`, no negated shorthand or hex escapes, no positive
    class holding one; negated classes get the delimiters added so they cannot match them.
    """
    if len(pattern) < 2 or not pattern.startswith("^") or not pattern.endswith("$"):
        return None
    body = pattern[1:-1]
    if body.endswith("\\") and not body.endswith("\\\\"):
        return None
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt in _UNSAFE_ESCAPES or nxt in _FORBIDDEN:
                return None
            # ASCII digits only: stricter than Unicode \d (so still safe), and a smaller,
            # faster automaton.
            out.append("[0-9]" if nxt == "d" else body[i : i + 2])
            i += 2
            continue
        quantifier = _QUANTIFIER.match(body, i)
        if quantifier:
            out.append(quantifier.group())
            i = quantifier.end()
            continue
        if ch == "[":
            negated = body.startswith("[^", i)
            start = i + (2 if negated else 1)
            j = start + (1 if body.startswith("]", start) else 0)  # `[]...]`: a literal ]
            while j < len(body) and body[j] != "]":
                j += 2 if body[j] == "\\" else 1
            if j >= len(body):
                return None
            content = body[start:j]
            if negated:
                if _set_syntax(content):
                    return None
                out.append(f"[^{_FORBIDDEN}{content}]")
            elif _positive_class_ok(content):
                out.append(f"[{_ascii_digits(content)}]")
            else:
                return None
            i = j + 1
            continue
        if (
            ch in "^$."
            or ch in _FORBIDDEN
            or (body.startswith("(?", i) and not body.startswith("(?:", i))
        ):
            return None  # an anchor, any character, a delimiter, or inline flags
        out.append(ch)
        i += 1
    return "".join(out)


_WS_ESCAPES = frozenset("stnrvfxupP")
_TRIMMED_TEXT = rf"(?:[^\s{_FORBIDDEN}](?:[^{_FORBIDDEN}]*[^\s{_FORBIDDEN}])?)?"
"""Any text without whitespace at either end (what trimming would leave unchanged)."""


def whitespace_free(inner: str) -> bool:
    """True when a pattern body (from `pattern_body`) can never match whitespace: no
    space, no escape that may stand for whitespace, and every negated class excludes `\\s`."""
    i, in_class, negated, has_s = 0, False, False, False
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            nxt = inner[i + 1]
            if in_class and negated and nxt == "s":
                has_s = True
            elif nxt in _WS_ESCAPES:
                return False
            i += 2
            continue
        if ch == " ":
            return False
        if in_class and ch == "]":
            if negated and not has_s:
                return False
            in_class = False
        elif not in_class and ch == "[":
            in_class, has_s = True, False
            negated = inner.startswith("[^", i)
        i += 1
    return True


def _literal(value: str) -> str:
    return "".join(
        ch if ch.isalnum() or ch in " _" or not ch.isascii() else "\\" + ch for ch in value
    )


def _starts_with_a_letter(inner: str) -> bool:
    """Every text the pattern body matches starts with an ASCII letter (so it cannot be a
    number in scientific notation). Decided on the syntax: a leading letter, or a leading
    group of alternatives that each start with one."""
    # A top-level alternative may start with anything (groups removed, conservatively).
    if "|" in re.sub(r"\(.*?\)", "", inner):
        return False
    if inner[:1].isascii() and inner[:1].isalpha():
        return inner[1:2] not in ("?", "*", "{")
    end = inner.find(")")
    if not inner.startswith("(") or end < 0 or "(" in inner[1:end] or "\\" in inner[:end]:
        return False
    group = inner[1:end].removeprefix("?:")
    if inner[end + 1 : end + 2] in ("?", "*", "{"):
        return False
    return all(alt[:1].isascii() and alt[:1].isalpha() for alt in group.split("|"))


def _unsigned(col: ColumnSpec) -> bool:
    """The column's gate part leaves out the minus sign: negatives are errors (`negative`) or
    below a minimum of at least 0 (`below_minimum`), so a negative value takes the exact lane.
    (An int column without a minimum keeps its sign: nothing forbids negative ints.)"""
    if col.minimum is not None and col.minimum >= 0:
        return True
    return col.type in ("money", "decimal") and not col.signed


def _sign_rules(col: ColumnSpec) -> set[str]:
    """Rules a part without a minus sign decides: a value it matches is at least 0."""
    rules = set()
    if not col.signed and col.type in ("money", "decimal"):
        rules.add("negative")
    if col.minimum is not None and col.minimum <= 0:
        rules.add("below_minimum")
    return rules


def _currency_codes(col: ColumnSpec) -> str | None:
    """The known codes a currency column's pattern allows, in lower case (how exports write
    them: `USD` takes the exact lane), as one alternation; None if there are none.

    The codes are tested the way `rule_pattern` tests a value (polars' `str.contains`, the
    same regex engine), so a code the gate lets through cannot fail that rule."""
    return _codes_matching(col.pattern)


@functools.lru_cache(maxsize=64)
def _codes_matching(pattern: str | None) -> str | None:
    # Cached per pattern: a gate is built for every file, each currency column asks.
    codes = pl.Series(sorted(KNOWN_CURRENCIES), dtype=pl.String)
    if pattern:
        try:
            codes = codes.filter(codes.str.contains(pattern))
        except pl.exceptions.PolarsError:
            return None
    return f"(?:{'|'.join(codes.to_list())})" if codes.len() else None


def _form(col: ColumnSpec, locale: NumberLocale, currency: bool) -> tuple[str, set[str]] | None:
    """A non-empty value of the column in its gated form, and the rules that form decides."""
    if col.type == "string":
        if currency and not col.enum:
            codes = _currency_codes(col)
            if codes is not None:
                rules = {"currency_code"} | ({"pattern"} if col.pattern else set())
                if col.no_scientific:  # every code starts with a letter
                    rules.add("excel_scientific")
                return codes, rules
        # Any level: a row failing a warning-level pattern takes the exact lane all the same.
        if col.pattern:
            inner = pattern_body(col.pattern)
            if inner is not None:
                rules = {"pattern"}
                if col.no_scientific and _starts_with_a_letter(inner):
                    rules.add("excel_scientific")
                return f"(?:{inner})", rules
            return None
        if col.enum and not col.pattern and all(v.isascii() and v for v in col.enum):
            flag = "?i-u:" if col.case_insensitive else "?:"
            values = "|".join(_literal(v) for v in col.enum)
            if not any(v != v.strip() for v in col.enum):
                return f"({flag}{values})", {"enum"}
        return None
    if col.type == "bool":
        return "(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])", {"bool_format"}
    if col.type in ("money", "decimal") and locale not in _GATED_LOCALES:
        return None
    sign = "" if _unsigned(col) else "-?"
    rules = _sign_rules(col) if not sign else set()
    if col.type == "money":
        # At most twelve integer digits: below MAX_MAJOR (values.py), never `money_range`.
        return f"(?:{sign}{_MONEY})", {"number_format", "money_range"} | rules
    if col.type == "decimal":
        return f"(?:{sign}{_NUMBER})", {"number_format"} | rules
    if col.type == "int":
        return f"(?:{sign}{_INT})", {"int_format"} | rules
    if col.type == "datetime" and col.formats and set(col.formats) <= CHEAP_DATETIME_FORMATS:
        sec = _SECONDS if "ymd_hm" not in col.formats else f"(?:{_SECONDS})?"
        if "ymd_hms" not in col.formats:
            sec = ""
        return f"(?:{_DATE_HM}{sec})", {"datetime_format"}
    return None


def gate_part(
    col: ColumnSpec, locale: NumberLocale, *, currency: bool = False
) -> tuple[str, set[str]] | None:
    """The gate's sub-pattern for one column and the rules it covers, or None if not gated.

    `currency`: the column holds the currency code of money columns (its part is then the
    known codes). A nullable column's part also accepts an empty cell; a non-nullable one's
    does not, and then decides `required_value` too (unless its pattern admits whitespace: a
    cell of spaces would be empty once trimmed).
    """
    got = _form(col, locale, currency)
    if got is None:
        return None
    inner, rules = got
    body = pattern_body(col.pattern) if "pattern" in rules and col.pattern else None
    if col.nullable or (body is not None and not whitespace_free(body)):
        return f"{inner}?", rules
    return inner, rules | {"required_value"}


def build_gate(contract: Contract, locale: NumberLocale, label: dict[str, str]) -> Gate | None:
    """The gate of `contract` (None when no column can be gated).

    Args:
        contract: the contract.
        locale: the number locale of the file.
        label: canonical name -> header as found in the file (checks are named by it).
    """
    parts: list[str] = []
    cells: list[pl.Expr] = []
    columns: set[str] = set()
    covered: set[tuple[str, str]] = set()
    trimmed: set[str] = set()
    currencies = currency_columns(contract)
    for col in contract.columns:
        got = gate_part(col, locale, currency=col.name in currencies)
        if got is None:
            part, rules = _TRIMMED_TEXT, set()
            trimmed.add(col.name)
        else:
            part, rules = got
            columns.add(col.name)
            inner = pattern_body(col.pattern) if "pattern" in rules else None
            if inner is None or whitespace_free(inner):
                trimmed.add(col.name)
        parts.append(part)
        cells.append(text_col(col.name).fill_null(""))
        covered |= {(r, label.get(col.name, col.name)) for r in rules}
    if not parts:
        return None
    pattern = "^" + SEP.join(parts) + "$"
    joined = pl.concat_str(cells, separator=SEP) if len(cells) > 1 else cells[0]
    ok = joined.str.contains(pattern).fill_null(False)
    return Gate(
        ok=ok,
        columns=frozenset(columns),
        covered=frozenset(covered),
        trimmed=frozenset(trimmed),
    )


_QUOTED_CHAR = '(?:[^"\\r\\n\x00]|"")'
_RAW_CELL = f'(?:[^{_FORBIDDEN}\\r]*|"{_QUOTED_CHAR}*")'
"""A cell the contract does not know, as written: any text, quoted or not, on one line."""
_QUOTED_END = '(?:[^\\s"\x00]|"")'
_LINE_TEXT = f'(?:{_TRIMMED_TEXT}|"(?:{_QUOTED_END}(?:{_QUOTED_CHAR}*{_QUOTED_END})?)?")'
"""Text without whitespace at either end, quoted (on one line) or not."""


def line_pattern(
    contract: Contract, header: list[str], positions: dict[str, int], locale: NumberLocale
) -> str | None:
    """The gate over a raw CSV line (structure.py runs it on every physical line).

    The parts of `build_gate`, each at its column's position in the header, joined by commas;
    any text for the other cells. A line that matches is one record of exactly the header's
    number of fields, and every gated cell has its form: the same promise as `Gate.ok`, so the fast lane can use
    either. Cells of free text and unknown columns may be quoted (on one line: a record that
    spans lines starts with a line that has an odd number of quotes, which no part matches).
    None for a one-column file (a blank line would match).
    """
    if len(header) < 2:
        return None
    by_pos = {pos: name for name, pos in positions.items()}
    currencies = currency_columns(contract)
    parts = []
    for i in range(len(header)):
        name = by_pos.get(i)
        if name is None:
            parts.append(_RAW_CELL)
            continue
        got = gate_part(contract.column(name), locale, currency=name in currencies)
        parts.append(got[0] if got else _LINE_TEXT)
    return "^" + ",".join(parts) + "$"
