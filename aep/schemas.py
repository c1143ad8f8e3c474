"""Schema Registry: tenant id, tenant schemas, identity descriptors, lookup by unique title.

Schema GETs need an `Accept` header with the XED media type; lists answer
`{"results": [...], "_page": {...}, "_links": {"next": ...}}`. Titles are unique per sandbox,
so a schema the tool creates is found again by its title.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pydantic import Field

from aep._api import Model, Service
from aep.lookup import CreateResult, create_or_find, one_or_none

__all__ = ["ACCEPT_FULL", "ACCEPT_IDS", "BASE", "CONTENT_TYPE_FULL", "Schema", "SchemaRegistry"]

BASE = "/data/foundation/schemaregistry"
ACCEPT_IDS = "application/vnd.adobe.xed-id+json"
ACCEPT_FULL = "application/vnd.adobe.xed-full+json; version=1"
CONTENT_TYPE_FULL = "application/vnd.adobe.xed-full+json;version=1"
"""What `schemaRef.contentType` and target connections' `data.schema.version` carry."""


class Schema(Model):
    """A schema (fields the tool reads)."""

    id: str = Field(alias="$id")
    alt_id: str | None = Field(default=None, alias="meta:altId")
    title: str | None = None
    version: str | None = None


ACCEPT_DESCRIPTORS = "application/vnd.adobe.xdm+json"
"""The descriptor list as objects (the `xdm-link`/`xdm-id` forms give only their paths)."""


class SchemaRegistry(Service):
    """Schema Registry API (`/data/foundation/schemaregistry`)."""

    base = BASE

    def identity_descriptors(self, schema_id: str) -> list[dict[str, Any]]:
        """The identity descriptors whose source schema is `schema_id`.

        `GET /tenant/descriptors` answers, depending on `Accept`, either a list of descriptor
        objects or an object grouping them by `@type`; both are read.
        """
        response = self.http.request(
            "GET", self.url("/tenant/descriptors"), headers={"Accept": ACCEPT_DESCRIPTORS}
        )
        body = self.http.json(response)
        items: list[Any]
        if isinstance(body, list):
            items = body
        elif isinstance(body, dict):
            items = [d for group in body.values() if isinstance(group, list) for d in group]
        else:
            raise self.http.format_error(response, "a list of descriptors was expected")
        return [
            d
            for d in items
            if isinstance(d, dict)
            and d.get("@type") == "xdm:descriptorIdentity"
            and d.get("xdm:sourceSchema") == schema_id
        ]

    def tenant_id(self) -> str:
        """The org's tenant id (`GET /stats` → `tenantId`)."""
        response = self.http.request("GET", self.url("/stats"))
        body = self.http.json(response)
        tenant = body.get("tenantId") if isinstance(body, dict) else None
        if not isinstance(tenant, str) or not tenant:
            raise self.http.format_error(response, "no tenantId in /stats")
        return tenant

    def create_schema(self, body: dict[str, Any]) -> Schema:
        """`POST /tenant/schemas` (201 with `$id`, `meta:altId`). Sent once."""
        response = self.http.request("POST", self.url("/tenant/schemas"), json=body)
        return self._parse(response, Schema, self.http.json(response))

    def create_descriptor(self, body: dict[str, Any]) -> str:
        """`POST /tenant/descriptors` (e.g. a primary identity); returns its `@id`. Sent once."""
        response = self.http.request("POST", self.url("/tenant/descriptors"), json=body)
        data = self.http.json(response)
        ident = data.get("@id") if isinstance(data, dict) else None
        if not isinstance(ident, str) or not ident:
            raise self.http.format_error(response, "no @id in the created descriptor")
        return ident

    def primary_identity(self, schema_id: str, path: str, namespace: str) -> str:
        """Make the field at `path` (`/personalEmail/address`) the schema's primary identity."""
        return self.create_descriptor(
            {
                "@type": "xdm:descriptorIdentity",
                "xdm:sourceSchema": schema_id,
                "xdm:sourceVersion": 1,
                "xdm:sourceProperty": path,
                "xdm:namespace": namespace,
                "xdm:property": "xdm:code",
                "xdm:isPrimary": True,
            }
        )

    def get_schema(self, schema_id: str) -> dict[str, Any]:
        """The full schema (`$ref`s resolved) by `$id` or `meta:altId`."""
        response = self.http.request(
            "GET",
            self.url(f"/tenant/schemas/{quote(schema_id, safe='')}"),
            headers={"Accept": ACCEPT_FULL},
        )
        body = self.http.json(response)
        if not isinstance(body, dict):
            raise self.http.format_error(response, "a schema object was expected")
        return body

    def schemas(self, *, title: str | None = None) -> Iterator[Schema]:
        """Tenant schemas (with that exact title, if given), page by page."""
        params: list[tuple[str, Any]] = [("property", f"title=={title}")] if title else []
        for response, items in self._pages(
            "/tenant/schemas", params=params, headers={"Accept": ACCEPT_IDS}, items_key="results"
        ):
            for item in items:
                schema = self._parse(response, Schema, item)
                if title is None or schema.title == title:
                    yield schema

    def find_schema_by_title(self, title: str) -> Schema | None:
        """The one tenant schema titled `title`, or None (`AmbiguousMatch` if several)."""
        found = list(self.schemas(title=title))
        one = one_or_none("schema", title, (s.id for s in found))
        return next(s for s in found if s.id == one) if one else None

    def ensure_schema(self, body: dict[str, Any]) -> CreateResult:
        """Create the schema titled `body["title"]` unless it exists."""
        title = str(body["title"])

        def find() -> str | None:
            schema = self.find_schema_by_title(title)
            return schema.id if schema else None

        return create_or_find(
            kind="schema", name=title, find=find, create=lambda: self.create_schema(body).id
        )
