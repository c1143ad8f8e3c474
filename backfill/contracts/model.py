"""The contract of one CSV export, as read from its TOML file (pydantic at the boundary).

A contract says which columns an export has (canonical name, header and aliases), how each
column's text must look, which cross-column rules hold, which rows are set aside (excluded)
rather than rejected, the identity key, and the conversions for the destination.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ColumnSpec",
    "ColumnType",
    "Condition",
    "Contract",
    "DatetimeFormat",
    "EraSpec",
    "ExcludeSpec",
    "Level",
    "NumberLocale",
    "ReferenceSpec",
    "RuleSpec",
    "UniqueSpec",
]

Level = Literal["error", "warning"]
ColumnType = Literal["string", "money", "decimal", "int", "bool", "datetime"]
DatetimeFormat = Literal["ymd_hm", "ymd_hms", "ymd_hms_frac", "iso_offset", "unix"]
NumberLocale = Literal["plain", "en", "de"]
"""`plain`: `1234.56` only; `en`: also `1,234.56`; `de`: `1.234,56` and `1234,56`."""
TimezoneSpec = str
"""`UTC`, `account` (settings.backfill.account_timezone), `header` (UTC when the matched header
says `(UTC)`, else the account zone) or an IANA zone name."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """One column the contract knows: where it comes from, what its text must look like."""

    name: str
    """Canonical name in the valid output (the same whatever the export era)."""
    header: str
    """The header as the current export writes it."""
    aliases: tuple[str, ...] = ()
    """Other headers accepted for this column (older eras, other selections)."""
    required: bool = False
    """The header must be present (after aliases)."""
    nullable: bool = True
    """An empty value is allowed."""
    type: ColumnType = "string"
    level: Level = "error"
    """Level of this column's value checks (format, pattern, enum, range)."""
    pattern: str | None = None
    """Regex the whole value must match (when not empty)."""
    no_scientific: bool = False
    """Reject Excel's `9.16722E+11` mangling of long digit strings."""
    enum: tuple[str, ...] = ()
    """Allowed values (when not empty)."""
    enum_map: dict[str, str] = Field(default_factory=dict)
    """Export value -> destination value (e.g. Stripe `Paid` -> `succeeded`)."""
    case_insensitive: bool = False
    unknown_enum_level: Level | None = None
    """Level for a value outside `enum`; defaults to `level`."""
    lower: bool = False
    """Lower-case the value in the output (currency codes)."""
    currency: str | None = None
    """Money: canonical name of the column holding this amount's currency."""
    currency_fallback: str | None = None
    """Money: currency column used when `currency` is empty (Stripe `Fee`)."""
    signed: bool = False
    """Money/decimal: negative values allowed."""
    minimum: float | None = None
    maximum: float | None = None
    min_level: Level | None = None
    """Level of the `minimum` check (defaults to `level`)."""
    formats: tuple[DatetimeFormat, ...] = ()
    timezone: TimezoneSpec = "UTC"
    not_future: bool = False
    not_before: str | None = None
    """Datetime: earliest accepted instant, ISO date (`2011-01-01`)."""
    convert: Literal["none", "minor_units", "unix_seconds", "iso_utc"] = "none"

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        if self.type == "money" and not self.currency:
            raise ValueError(f"money column {self.name!r} needs `currency`")
        if self.type == "datetime" and not self.formats:
            raise ValueError(f"datetime column {self.name!r} needs `formats`")
        return self


class Condition(_Model):
    """A condition on one column's text: equals one of `values` (case-insensitive; "" = empty)."""

    column: str
    values: tuple[str, ...]


class RuleSpec(_Model):
    """A cross-column rule, evaluated on the parsed values."""

    id: str
    kind: Literal[
        "compare", "difference", "required_if", "any_present", "forbid", "both_or_neither"
    ]
    level: Level = "error"
    message: str
    column: str | None = None
    """Column reported in the rejects file (defaults to the first column involved)."""
    left: str | None = None
    op: Literal["<", "<=", "==", "!=", ">=", ">"] | None = None
    right: str | None = None
    value: float | None = None
    """compare: constant right-hand side; required_if: threshold for `left op value`."""
    result: str | None = None
    """difference: `result == left - right`."""
    columns: tuple[str, ...] = ()
    """any_present / both_or_neither: the columns involved."""
    when: tuple[Condition, ...] = ()
    """Only rows where every condition holds are checked."""
    date_only: bool = False
    """compare: compare the calendar dates (UTC) of two datetimes."""
    tolerance: float = 0.0
    """compare `==` / difference: allowed absolute difference (decimals)."""


class UniqueSpec(_Model):
    """Values (one column or several together) that must not be shared by two identities."""

    id: str
    columns: tuple[str, ...]
    level: Level = "error"
    case_insensitive: bool = False
    message: str


class ReferenceSpec(_Model):
    """A cross-file rule: this export's rows checked against the valid rows of another kind.

    Evaluated after every file of the run has been validated, on the valid outputs (canonical
    names, converted values), and only when the run holds files of `target`. Three checks:

    * `exists`: the value of `columns[i]` is among the values of `target_columns[i]`. With
      several pairs a row passes when any of its non-empty columns is found in its pair; a row
      whose columns are all empty is not checked.
    * `compare`: `left op right`, where `right` is the target row's column found by the key
      (`columns[0]` -> `target_columns[0]`); rows whose key is not found are not checked.
    * `sum`: the sum of `left` over this kind's rows sharing a key (and meeting `when`; rows
      meeting `negate` count negatively) `op right` of the target row; every row of a failing
      group gets the rule.
    """

    id: str
    check: Literal["exists", "compare", "sum"]
    target: str
    """Kind of the referenced export."""
    columns: tuple[str, ...]
    """Key columns of this contract (canonical names)."""
    target_columns: tuple[str, ...]
    """The matching key columns of the target contract, pair by pair."""
    level: Level = "error"
    message: str
    column: str | None = None
    """Column reported in the rejects/warnings file (defaults to `columns[0]`)."""
    left: str | None = None
    """compare / sum: column of this contract."""
    op: Literal["<", "<=", "==", "!=", ">=", ">"] | None = None
    right: str | None = None
    """compare / sum: column of the target contract."""
    tolerance: float = 0.0
    """`==` / `!=`: allowed absolute difference (in output units)."""
    when: tuple[Condition, ...] = ()
    """Only rows where every condition holds (on the output value, case-insensitive)."""
    negate: tuple[Condition, ...] = ()
    """sum: rows where every condition holds count negatively (ledger debits)."""

    @model_validator(mode="after")
    def _check(self) -> ReferenceSpec:
        if not self.columns or len(self.columns) != len(self.target_columns):
            raise ValueError(f"reference {self.id!r}: columns and target_columns pair up")
        if self.check != "exists":
            if len(self.columns) != 1:
                raise ValueError(f"reference {self.id!r}: {self.check} takes one key column")
            if not (self.left and self.op and self.right):
                raise ValueError(f"reference {self.id!r}: {self.check} needs left, op and right")
        return self


class EraSpec(_Model):
    """A named header era, recognised by headers that must all be present."""

    name: str
    headers: tuple[str, ...]
    description: str = ""


class ExcludeSpec(_Model):
    """Rows set aside by a named reason that is not an error (e.g. Stripe test mode)."""

    reason: str
    column: str
    values: tuple[str, ...]
    message: str = ""


class Contract(_Model):
    """The contract of one export kind."""

    kind: str
    title: str
    confirmed: bool
    """False (UNCONFIRMED) when the header is not confirmed from a real export."""
    source: str = ""
    destination: Literal["stripe", "aep"]
    number_locale: NumberLocale = "plain"
    max_reject_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """Overrides settings.backfill.max_reject_rate for this kind."""
    identity: tuple[str, ...]
    identity_mode: Literal["coalesce", "composite"] = "composite"
    event_time: str | None = None
    """Canonical datetime column compared with the cut-over."""
    detect_min_score: int = 1
    eras: tuple[EraSpec, ...] = ()
    columns: tuple[ColumnSpec, ...]
    rules: tuple[RuleSpec, ...] = ()
    exclude: tuple[ExcludeSpec, ...] = ()
    unique: tuple[UniqueSpec, ...] = ()
    references: tuple[ReferenceSpec, ...] = ()
    newest_by: str | None = None
    """Integer (Unix time) column: of rows sharing an identity with different content, the one
    with the newest value is kept and the older ones are excluded as `superseded` (Capillary
    exports are incremental by auto-update time). Ties or a missing time: `duplicate_id`."""

    @model_validator(mode="after")
    def _check_refs(self) -> Contract:
        names = {c.name for c in self.columns}
        problems: list[str] = []
        if len(names) != len(self.columns):
            problems.append("duplicate canonical column names")
        refs = list(self.identity)
        refs += [c.currency for c in self.columns if c.currency]
        refs += [c.currency_fallback for c in self.columns if c.currency_fallback]
        refs += [e.column for e in self.exclude]
        refs += [c for u in self.unique for c in u.columns]
        if self.event_time:
            refs.append(self.event_time)
        if self.newest_by:
            refs.append(self.newest_by)
        for ref in self.references:
            refs += [x for x in (ref.left, ref.column) if x] + list(ref.columns)
            refs += [w.column for w in (*ref.when, *ref.negate)]
        for r in self.rules:
            refs += [x for x in (r.left, r.right, r.result, r.column) if x]
            refs += list(r.columns) + [w.column for w in r.when]
        problems += [f"unknown column {r!r}" for r in refs if r not in names]
        ids = [r.id for r in self.references]
        problems += [f"duplicate reference id {i!r}" for i in ids if ids.count(i) > 1]
        if self.newest_by in names and self.column(self.newest_by).type != "int":
            problems.append(f"newest_by column {self.newest_by!r} is not of type int")
        if problems:
            raise ValueError(f"contract {self.kind}: " + "; ".join(sorted(set(problems))))
        return self

    def check_targets(self, contracts: dict[str, Contract]) -> list[str]:
        """Problems with this contract's references to other kinds (unknown kind or column)."""
        problems = []
        for ref in self.references:
            target = contracts.get(ref.target)
            if target is None:
                problems.append(f"reference {ref.id!r}: unknown target kind {ref.target!r}")
                continue
            names = {c.name for c in target.columns}
            for col in [*ref.target_columns, *([ref.right] if ref.right else [])]:
                if col not in names:
                    problems.append(f"reference {ref.id!r}: {ref.target} has no column {col!r}")
        return problems

    def column(self, name: str) -> ColumnSpec:
        """The column with canonical `name`."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)
