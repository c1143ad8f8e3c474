"""The result objects of plan and apply: per-resource decisions and their field changes.

`Action` is the closed set printed and stored (create, update, no-op); a `FieldChange` is one
JSON Patch operation by path and kind with the values before and after; a `Change` is the
decision on one resource; a `Plan` is all of them in chain order, rendered as text (one line per
resource, then counts by action) or as a dict for `--json`. `diff`, `project` and `merged` are
the comparison rules the reconciler applies field by field.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from aep.flows import PatchOp, patch

__all__ = ["NEW", "Action", "Change", "FieldChange", "Plan", "diff", "merged", "project"]

NEW = "(new)"
"""Stands for the id of a resource that `plan` would create."""


class Action(StrEnum):
    """What happens to one resource."""

    CREATE = "create"
    UPDATE = "update"
    NOOP = "no-op"


_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.NOOP: "unchanged"}
_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.NOOP: "="}


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: a JSON Patch op by path and kind, with before and after."""

    path: str
    kind: Literal["add", "replace", "remove"]
    before: Any = None
    after: Any = None

    def op(self) -> PatchOp:
        """The JSON Patch operation (as the tutorials send it)."""
        return patch(self.kind, self.path, self.after)

    def line(self) -> str:
        """`replace /description: 'a' -> 'b'`."""
        if self.kind == "add":
            return f"{self.kind} {self.path}: {_short(self.after)}"
        if self.kind == "remove":
            return f"{self.kind} {self.path} (was {_short(self.before)})"
        return f"{self.kind} {self.path}: {_short(self.before)} -> {_short(self.after)}"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Change:
    """The decision on one resource."""

    flow: str
    """The flow key (or `connections.<key>` for a shared base connection)."""
    resource: str
    """schema, identity, dataset, base connection, source connection, target connection,
    mapping set or flow."""
    name: str
    action: Action
    id: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    note: str | None = None

    def line(self, *, done: bool = False) -> str:
        """One line: sign, action, flow, resource, name, id."""
        verb = _PAST[self.action] if done else str(self.action)
        text = f"{_SIGN[self.action]} {verb:<9} {self.flow:<24} {self.resource:<18} {self.name}"
        if self.id and self.id != NEW:
            text += f" ({self.id})"
        if self.note:
            text += f"  [{self.note}]"
        return text

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form (`fields` carry their JSON Patch op)."""
        out = asdict(self)
        out["action"] = str(self.action)
        out["fields"] = [{**asdict(f), "op": f.op()} for f in self.fields]
        return out


@dataclass
class Plan:
    """Every resource's decision, in chain order."""

    changes: list[Change] = field(default_factory=list)
    applied: bool = False
    """True when the decisions were acted on (`apply`), False for a plan."""
    orphans: list[str] = field(default_factory=list)
    """Flows this tool made whose key is no longer in the flows file (never deleted by it)."""

    def counts(self) -> dict[str, int]:
        """How many resources per action (every action present, zeros included)."""
        found = Counter(str(c.action) for c in self.changes)
        return {str(a): found.get(str(a), 0) for a in Action}

    @property
    def has_changes(self) -> bool:
        """Whether anything would change (or did)."""
        return any(c.action != Action.NOOP for c in self.changes)

    def lines(self, *, detail: bool = True, changes_only: bool = False) -> list[str]:
        """One line per resource (or per changed one), JSON Patch detail under updates, then
        the counts."""
        out: list[str] = []
        for change in self.changes:
            if changes_only and change.action == Action.NOOP:
                continue
            out.append(change.line(done=self.applied))
            if detail:
                out.extend(f"      {f.line()}" for f in change.fields)
        out.extend(
            f"! not in the flows file any more (left running; delete it by hand): {o}"
            for o in self.orphans
        )
        c = self.counts()
        if self.applied:
            out.append(
                f"Applied: {c['create']} created, {c['update']} updated, {c['no-op']} unchanged."
            )
        else:
            out.append(
                f"Plan: {c['create']} to create, {c['update']} to update, {c['no-op']} unchanged."
            )
        return out

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "applied": self.applied,
            "changes": [c.asdict() for c in self.changes],
            "counts": self.counts(),
            "has_changes": self.has_changes,
            "orphans": list(self.orphans),
        }


def diff(path: str, before: Any, after: Any) -> FieldChange | None:
    """The change that makes `before` into `after` at `path` (None when equal)."""
    if before == after:
        return None
    if after is None:
        return FieldChange(path, "remove", before, None)
    if before is None:
        return FieldChange(path, "add", None, after)
    return FieldChange(path, "replace", before, after)


def project(have: Any, want: Any) -> Any:
    """`have` cut down to the keys `want` names (objects, recursively): fields the server adds
    on its own are not drift."""
    if isinstance(have, dict) and isinstance(want, dict):
        return {k: project(have.get(k), v) for k, v in want.items() if k in have}
    return have


def merged(have: Any, want: Any) -> Any:
    """`want` laid over `have` (objects, recursively), keeping what the server added."""
    if isinstance(have, dict) and isinstance(want, dict):
        return {**have, **{k: merged(have.get(k), v) for k, v in want.items()}}
    return want
