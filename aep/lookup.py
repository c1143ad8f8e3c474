"""Find-by-name and the safe create: the rules shared by every API's lookup.

Each API lists differently, so each module writes its own `find_*` (Flow Service
`property=name==` with `_links.next`; Catalog ID-keyed pages of at most 100; Schema Registry by
unique `title`; mapping sets by recorded id or description tag). What they share lives here:

- `one_or_none`: zero matches is None, one is its id, more than one is `AmbiguousMatch`
  listing every id (never a guess);
- `create_or_find`: look up, create if absent; after an ambiguous failure (a 5xx, a timeout or
  a dropped connection on the POST) look up again before creating again, because AEP has no
  idempotency keys and the first create may have been committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aep import errors

__all__ = ["CreateResult", "create_or_find", "one_or_none"]

logger = logging.getLogger("aep.lookup")

DEFAULT_CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class CreateResult:
    """The id of the resource, and whether this call created it."""

    id: str
    created: bool
    recovered: bool = False
    """True when a create failed ambiguously and the lookup found what it had committed."""


def one_or_none(kind: str, name: str, ids: Iterable[str]) -> str | None:
    """The only id, or None; more than one is an error listing them all.

    Raises:
        errors.AmbiguousMatch: two or more resources carry the name.
    """
    found = list(dict.fromkeys(ids))
    if len(found) > 1:
        raise errors.AmbiguousMatch(kind, name, found)
    return found[0] if found else None


def create_or_find(
    *,
    kind: str,
    name: str,
    find: Callable[[], str | None],
    create: Callable[[], str],
    attempts: int = DEFAULT_CREATE_ATTEMPTS,
    look_first: bool = True,
) -> CreateResult:
    """Make sure exactly one resource named `name` exists; return its id.

    Args:
        kind: what it is, for messages (`flow`, `dataset`, ...).
        name: its deterministic name (or tag).
        find: the API's lookup by name; None when absent.
        create: sends the create once (never retried blindly by the send path) and returns
            the new id.
        attempts: how many creates may be sent in all.
        look_first: look up before the first create (False when the caller just did).

    Raises:
        errors.AmbiguousMatch: more than one resource carries the name.
        errors.AEPError: the create failed unambiguously, or every attempt failed.
    """
    if look_first:
        existing = find()
        if existing is not None:
            return CreateResult(id=existing, created=False)
    last: errors.AEPError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return CreateResult(id=create(), created=True, recovered=False)
        except errors.AEPError as exc:
            if not exc.ambiguous:
                raise
            last = exc
            logger.warning(
                "create of %s %r failed ambiguously (%s, attempt %d of %d); looking it up "
                "before creating again",
                kind,
                name,
                type(exc).__name__,
                attempt,
                attempts,
            )
        existing = find()
        if existing is not None:
            return CreateResult(id=existing, created=True, recovered=True)
    assert last is not None
    raise last
