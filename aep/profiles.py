"""Real-Time Customer Profile access: a profile by one identity.

`GET /data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=..&entityIdNS=..`
answers an object keyed by an internal entity id; a miss is a 404 or an entry with an empty
`entity`, both read as None.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from aep._api import Model, Service
from aep.errors import NotFoundError

__all__ = ["BASE", "ProfileEntity", "Profiles"]

BASE = "/data/core/ups"


class ProfileEntity(Model):
    """One merged profile."""

    entityId: str | None = None
    sources: list[str] = Field(default_factory=list)
    entity: dict[str, Any] = Field(default_factory=dict)
    lastModifiedAt: str | int | None = None


class Profiles(Service):
    """Profile access API (`/data/core/ups/access/entities`)."""

    base = BASE

    def get_entity(
        self,
        entity_id: str,
        namespace: str,
        *,
        schema_name: str = "_xdm.context.profile",
        fields: list[str] | None = None,
    ) -> ProfileEntity | None:
        """The profile with identity `entity_id` in `namespace`, or None when unknown."""
        params: dict[str, Any] = {
            "schema.name": schema_name,
            "entityId": entity_id,
            "entityIdNS": namespace,
        }
        if fields:
            params["fields"] = ",".join(fields)
        try:
            response = self.http.request("GET", self.url("/access/entities"), params=params)
        except NotFoundError:
            return None
        body = self.http.json(response)
        if not isinstance(body, dict):
            raise self.http.format_error(response, "an object keyed by entity id was expected")
        for key, value in body.items():
            if isinstance(value, dict) and value.get("entity"):
                return self._parse(response, ProfileEntity, {"entityId": key, **value})
        return None
