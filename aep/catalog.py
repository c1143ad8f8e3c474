"""Catalog Service: datasets and batches.

Creating a dataset answers 201 with `["@/dataSets/<id>"]`; PATCH takes JSON Patch as
`application/json-patch+json` (enabling Profile on `/tags/unifiedProfile`); reads and lists answer objects keyed
by id (not arrays), at most 100 per page (`limit`, `start`). Lookup by name pages through
`GET /dataSets?name=<name>` and keeps exact matches only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx

from aep import deviations
from aep._api import Model, Service
from aep.lookup import CreateResult, create_or_find, one_or_none

__all__ = ["BASE", "PAGE_LIMIT", "Batch", "Catalog", "Dataset"]

BASE = "/data/foundation/catalog"
PAGE_LIMIT = 100
"""Catalog's maximum objects per response."""
JSON_PATCH = "application/json-patch+json"
"""Catalog's content type for JSON Patch bodies."""


class _Keyed(Model):
    """An object of an ID-keyed Catalog answer (its key becomes `id`)."""

    id: str


K = TypeVar("K", bound=_Keyed)


class Dataset(_Keyed):
    """A dataset as Catalog stores it (the id is the key it was listed under)."""

    name: str | None = None
    schemaRef: dict[str, Any] | None = None
    tags: dict[str, list[str]] | None = None
    lastBatchId: str | None = None
    lastBatchStatus: str | None = None


class Batch(_Keyed):
    """A batch: status and record counts for reconciliation."""

    status: str | None = None
    recordCount: int | None = None
    failedRecordCount: int | None = None
    created: int | None = None
    completed: int | None = None
    errors: list[dict[str, Any]] | None = None
    relatedObjects: list[dict[str, Any]] | None = None


class Catalog(Service):
    """Catalog Service API (`/data/foundation/catalog`)."""

    base = BASE

    def _keyed(self, response: httpx.Response, model: type[K]) -> list[K]:
        body = self.http.json(response)
        if not isinstance(body, dict):
            raise self.http.format_error(response, "an object keyed by id was expected")
        out: list[K] = []
        for key, value in body.items():
            if not isinstance(value, dict):
                raise self.http.format_error(response, f"entry {key!r} is not an object")
            out.append(self._parse(response, model, {**value, "id": key}))
        return out

    def _keyed_pages(self, path: str, params: list[tuple[str, Any]], model: type[K]) -> Iterator[K]:
        return self._start_pages(
            path, params, lambda response: self._keyed(response, model), limit=PAGE_LIMIT
        )

    # -- datasets
    def create_dataset(self, body: dict[str, Any]) -> str:
        """`POST /dataSets`; returns the new id (from `["@/dataSets/<id>"]`). Sent once."""
        response = self.http.request(
            "POST", self.url("/dataSets"), json=body, params={"requestDataSource": "true"}
        )
        refs = self.http.json(response)
        if not (isinstance(refs, list) and refs and isinstance(refs[0], str)):
            raise self.http.format_error(response, 'expected ["@/dataSets/<id>"]')
        return refs[0].rsplit("/", 1)[-1]

    def get_dataset(self, dataset_id: str) -> Dataset:
        """`GET /dataSets/{id}` (raises `NotFoundError`)."""
        response = self.http.request("GET", self.url(f"/dataSets/{dataset_id}"))
        found = self._keyed(response, Dataset)
        if not found:
            raise self.http.format_error(response, "empty answer")
        return found[0]

    def patch_dataset(self, dataset_id: str, ops: list[dict[str, Any]]) -> None:
        """`PATCH /dataSets/{id}` with JSON Patch (`application/json-patch+json`)."""
        self.http.request(
            "PATCH",
            self.url(f"/dataSets/{dataset_id}"),
            json=ops,
            content_type=JSON_PATCH,
        )

    def enable_profile(self, dataset_id: str, *, upsert: bool = False) -> None:
        """Enable the dataset for Profile and Identity (its schema must carry the `union` tag)."""
        profile = ["enabled:true", *(["isUpsert:true"] if upsert else [])]
        self.patch_dataset(
            dataset_id,
            [
                {
                    "op": deviations.patch_op("add"),
                    "path": "/tags/unifiedProfile",
                    "value": profile,
                },
                {
                    "op": deviations.patch_op("add"),
                    "path": "/tags/unifiedIdentity",
                    "value": ["enabled:true"],
                },
            ],
        )

    def datasets(self, *, name: str | None = None) -> Iterator[Dataset]:
        """Every dataset (with that exact name, if given), 100 per page."""
        params: list[tuple[str, Any]] = [("name", name)] if name is not None else []
        for item in self._keyed_pages("/dataSets", params, Dataset):
            if name is None or item.name == name:
                yield item

    def find_dataset_by_name(self, name: str) -> str | None:
        """The id of the one dataset named `name`, or None (`AmbiguousMatch` if several)."""
        return one_or_none("dataset", name, (d.id for d in self.datasets(name=name)))

    def ensure_dataset(self, name: str, body: dict[str, Any]) -> CreateResult:
        """Create the dataset named `name` unless it exists; safe after ambiguous failures."""
        full = {**body, "name": name}
        return create_or_find(
            kind="dataset",
            name=name,
            find=lambda: self.find_dataset_by_name(name),
            create=lambda: self.create_dataset(full),
        )

    # -- batches
    def batches(self, dataset_id: str, *, created_after_ms: int | None = None) -> Iterator[Batch]:
        """The dataset's batches, newest first, 100 per page."""
        params: list[tuple[str, Any]] = [("dataSet", dataset_id), ("orderBy", "desc:created")]
        if created_after_ms is not None:
            params.append(("createdAfter", created_after_ms))
        yield from self._keyed_pages("/batches", params, Batch)

    def get_batch(self, batch_id: str) -> Batch:
        """`GET /batches/{id}`."""
        response = self.http.request("GET", self.url(f"/batches/{batch_id}"))
        found = self._keyed(response, Batch)
        if not found:
            raise self.http.format_error(response, "empty answer")
        return found[0]
