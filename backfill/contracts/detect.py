"""Match a file's header to a contract: which columns map where, and which contract fits best."""

from __future__ import annotations

from dataclasses import dataclass, field

from backfill.contracts.model import Contract

__all__ = ["DetectionError", "HeaderMatch", "clean_header", "detect", "match_header"]


class DetectionError(Exception):
    """No contract (or more than one, equally) fits a header."""


def clean_header(names: list[str]) -> list[str]:
    """Strip one leading BOM and surrounding spaces from header names."""
    out = [n.strip() for n in names]
    if out and out[0].startswith("\ufeff"):
        out[0] = out[0][1:].strip()
    return out


@dataclass
class HeaderMatch:
    """How one header maps onto one contract."""

    contract: Contract
    columns: dict[str, int] = field(default_factory=dict)
    """Canonical name -> position in the file."""
    matched_header: dict[str, str] = field(default_factory=dict)
    """Canonical name -> header text it was found under."""
    via_alias: dict[str, str] = field(default_factory=dict)
    ignoring_case: dict[str, str] = field(default_factory=dict)
    """Canonical name -> header text that matched only once case and spacing were ignored."""
    missing_required: list[str] = field(default_factory=list)
    """Headers (current names) of required columns not found."""
    unknown: list[str] = field(default_factory=list)
    """Headers not in the contract (passed through)."""
    era: str | None = None

    @property
    def ok(self) -> bool:
        """All required columns are present."""
        return not self.missing_required

    @property
    def score(self) -> int:
        """Contract columns found in the header."""
        return len(self.columns)

    def reason(self) -> str:
        """One line: why this contract fits (or not)."""
        c = self.contract
        req = [x for x in c.columns if x.required]
        s = (
            f"{sum(1 for x in req if x.name in self.columns)}/{len(req)} required and "
            f"{self.score}/{len(c.columns)} known columns matched"
        )
        if self.era:
            s += f", era {self.era}"
        if self.via_alias:
            s += ", aliases " + ", ".join(f"{h!r}" for h in self.via_alias.values())
        if self.ignoring_case:
            s += ", ignoring case and spacing " + ", ".join(
                f"{h!r}" for h in self.ignoring_case.values()
            )
        if self.missing_required:
            s += ", missing " + ", ".join(repr(m) for m in self.missing_required)
        return s


def _folded(name: str) -> str:
    """A header name with case and runs of whitespace ignored."""
    return " ".join(name.split()).casefold()


def match_header(contract: Contract, header: list[str]) -> HeaderMatch:
    """Map a cleaned header onto `contract`: names and aliases as written first; then, for a
    column still missing, ignoring case and spacing (`AMOUNT`, `Created  date (UTC)`), when one
    header name alone folds to it. The reason says which names matched that way."""
    pos = {name: i for i, name in enumerate(header)}
    folded: dict[str, int | None] = {}
    for i, name in enumerate(header):
        key = _folded(name)
        folded[key] = None if key in folded else i  # two names folding alike: neither
    m = HeaderMatch(contract)
    used: set[int] = set()
    exact = {
        col.name: next(
            (pos[c] for c in (col.header, *col.aliases) if c in pos),
            None,
        )
        for col in contract.columns
    }
    taken = {i for i in exact.values() if i is not None}
    for col in contract.columns:
        at = exact[col.name]
        if at is not None and at in used:
            at = None
        loose = False
        if at is None:
            for cand in (col.header, *col.aliases):
                i = folded.get(_folded(cand))
                if i is not None and i not in used and i not in taken:
                    at, loose = i, True
                    break
        if at is None:
            if col.required:
                m.missing_required.append(col.header)
            continue
        used.add(at)
        m.columns[col.name] = at
        m.matched_header[col.name] = header[at]
        if loose:
            m.ignoring_case[col.name] = header[at]
        elif header[at] != col.header:
            m.via_alias[col.name] = header[at]
    m.unknown = [h for i, h in enumerate(header) if i not in used]
    present = {_folded(h) for h in header}
    for era in contract.eras:
        if all(_folded(h) in present for h in era.headers):
            m.era = era.name
            break
    return m


def detect(
    contracts: dict[str, Contract], header: list[str], kind: str | None = None
) -> tuple[HeaderMatch, str]:
    """Pick the contract for a header; returns the match and why it was picked.

    Raises:
        DetectionError: `kind` is unknown, or no contract / several contracts fit equally.
    """
    if kind is not None:
        if kind not in contracts:
            raise DetectionError(f"unknown kind {kind!r} (known: {', '.join(sorted(contracts))})")
        m = match_header(contracts[kind], header)
        return m, f"--kind {kind}: {m.reason()}"
    matches = [match_header(c, header) for c in contracts.values()]
    fits = [m for m in matches if m.ok and m.score >= m.contract.detect_min_score]
    if not fits:
        best = max(matches, key=lambda m: (m.score - len(m.missing_required) * 2, m.score))
        raise DetectionError(
            f"no contract fits the header; closest is {best.contract.kind} ({best.reason()}); "
            "choose one with `aep-migrate validate --kind K`, or add the header's names as "
            "aliases of that contract (backfill.contracts_dir)"
        )
    # Prefer the contract that explains the largest share of the header, then the most columns.
    fits.sort(key=lambda m: (m.score / max(len(header), 1), m.score), reverse=True)
    top = fits[0]
    if len(fits) > 1 and (fits[1].score, len(fits[1].unknown)) == (top.score, len(top.unknown)):
        raise DetectionError(
            f"header fits {top.contract.kind} and {fits[1].contract.kind} equally; choose one "
            "with `aep-migrate validate --kind K`"
        )
    why = f"detected from the header: {top.reason()}"
    if len(fits) > 1:
        why += f" (next: {fits[1].contract.kind}, {fits[1].score} columns)"
    return top, why
