"""Data Prep: mapping sets (create answers 200, not 201), validation, lookup.

Mapping sets have no name the lists filter on, so the tool finds its own by the id it recorded
or, failing that, by a description tag (`aep.names.description_tag`) it writes into the
description of the set's first mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field

from aep._api import Model, Service
from aep.errors import NotFoundError
from aep.lookup import CreateResult, create_or_find, one_or_none

__all__ = ["BASE", "DataPrep", "MappingSet", "Validation", "with_tag"]

BASE = "/data/foundation/conversion"
PAGE_LIMIT = 100


_TAG_CHARS = r"A-Za-z0-9._:-"
"""What a tag is made of (`aep.names`: name characters and the `:` between prefix and key)."""


def _holds_tag(text: object, tag: str) -> bool:
    """Whether `tag` appears in `text` as a whole, not inside a longer tag.

    `aep-bridge:stripe_payments` is not in `aep-bridge:stripe_payments_eu` nor in
    `staging-aep-bridge:stripe_payments`: a substring test would take another key's mapping set.
    """
    if not isinstance(text, str):
        return False
    pattern = rf"(?<![{_TAG_CHARS}]){re.escape(tag)}(?![{_TAG_CHARS}])"
    return re.search(pattern, text) is not None


class MappingSet(Model):
    """A mapping set (fields the tool reads)."""

    id: str
    version: int | None = None
    description: str | None = None
    name: str | None = None
    mappings: list[dict[str, Any]] = Field(default_factory=list)

    def has_tag(self, tag: str) -> bool:
        """Whether the tag is in the set's description or name, or a mapping's description."""
        texts = [self.description, self.name]
        texts += [m.get("description") for m in self.mappings if isinstance(m, dict)]
        return any(_holds_tag(t, tag) for t in texts)


class Validation(Model):
    """`/mappingSets/validate`: one entry per mapping, in order."""

    validationResponse: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every mapping validated with status SUCCESS."""
        return all(str(v.get("status", "")).upper() == "SUCCESS" for v in self.validationResponse)


def with_tag(body: dict[str, Any], tag: str) -> dict[str, Any]:
    """The mapping-set body carrying the lookup tag.

    The tag goes into the first mapping's `description` (a field of the spec's
    `MappingOperation`, stored with the set); the mapping set itself has no description field
    in the spec, so a top-level one could be dropped by the service.
    """
    mappings = [dict(m) for m in body.get("mappings") or []]
    if not mappings:
        raise ValueError("a mapping set needs at least one mapping to carry its tag")
    described = mappings[0].get("description")
    if not _holds_tag(described, tag):
        mappings[0]["description"] = f"{described} [{tag}]" if described else tag
    return {**body, "mappings": mappings}


class DataPrep(Service):
    """Data Prep API (`/data/foundation/conversion`)."""

    base = BASE

    def put_mapping_set(self, mapping_set_id: str, tag: str, body: dict[str, Any]) -> MappingSet:
        """`PUT /mappingSets/{id}`: the set's mappings become `body`'s, as a new version.

        The lookup tag is kept in the first mapping's description (`with_tag`), so the set is
        still found after the update. Sent once: a second PUT would make another version.
        """
        response = self.http.request(
            "PUT", self.url(f"/mappingSets/{mapping_set_id}"), json=with_tag(body, tag)
        )
        data = self.http.json(response)
        if isinstance(data, dict) and "id" in data and "version" in data:
            return self._parse(response, MappingSet, data)
        return self.get_mapping_set(mapping_set_id)

    def create_mapping_set(self, body: dict[str, Any]) -> MappingSet:
        """`POST /mappingSets` (answered 200 with `{id, version, ...}`). Sent once."""
        response = self.http.request("POST", self.url("/mappingSets"), json=body)
        return self._parse(response, MappingSet, self.http.json(response))

    def validate(self, body: dict[str, Any]) -> Validation:
        """`POST /mappingSets/validate` (creates nothing, so it may be re-sent)."""
        response = self.http.request(
            "POST", self.url("/mappingSets/validate"), json=body, idempotent=True
        )
        return self._parse(response, Validation, self.http.json(response))

    def get_mapping_set(self, mapping_set_id: str, *, version: int | None = None) -> MappingSet:
        """`GET /mappingSets/{id}[?version=n]`."""
        params = {"version": version} if version is not None else None
        response = self.http.request(
            "GET", self.url(f"/mappingSets/{mapping_set_id}"), params=params
        )
        return self._parse(response, MappingSet, self.http.json(response))

    def mapping_sets(self) -> Iterator[MappingSet]:
        """Every mapping set, 100 per page (`limit` and `start`, both required)."""
        return self._start_pages("/mappingSets", [], self._page, limit=PAGE_LIMIT)

    def _page(self, response: httpx.Response) -> list[MappingSet]:
        body = self.http.json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self.http.format_error(response, "`data` list expected")
        return [self._parse(response, MappingSet, item) for item in data]

    def find_mapping_set(self, *, tag: str, recorded_id: str | None = None) -> str | None:
        """The tool's mapping set: the recorded id if it still exists, else by tag.

        Raises:
            errors.AmbiguousMatch: more than one mapping set carries the tag.
        """
        if recorded_id:
            try:
                return self.get_mapping_set(recorded_id).id
            except NotFoundError:
                pass
        return one_or_none(
            "mapping set", tag, (m.id for m in self.mapping_sets() if m.has_tag(tag))
        )

    def ensure_mapping_set(
        self, tag: str, body: dict[str, Any], *, recorded_id: str | None = None
    ) -> CreateResult:
        """Create the tagged mapping set unless it exists; safe after ambiguous failures."""
        tagged = with_tag(body, tag)
        return create_or_find(
            kind="mapping set",
            name=tag,
            find=lambda: self.find_mapping_set(tag=tag, recorded_id=recorded_id),
            create=lambda: self.create_mapping_set(tagged).id,
        )
