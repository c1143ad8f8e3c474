"""Catalog Service (`/data/foundation/catalog`): datasets and batches, with ID-keyed lists.

Profile enablement (JSON Patch on `/tags/unifiedProfile`) is refused unless the dataset's schema
carries the `union` immutable tag and a primary identity descriptor, as AEP requires.
"""

from __future__ import annotations

from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from emulator import profiles
from emulator.context import Tenant, app_context, tenant
from emulator.errors import CatalogError, parse_json
from emulator.ids import hex_id, now_ms
from emulator.jsonpatch import PatchError, apply_patch
from emulator.store import Tx

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "routes"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _body(raw: bytes) -> Any:
    try:
        return parse_json(raw)
    except Exception as exc:  # re-shaped as Catalog's error body
        raise CatalogError(getattr(exc, "message", str(exc))) from None


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    q = request.query_params
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
        start = int(q.get("start", 0))
    except ValueError:
        raise CatalogError("limit and start must be integers.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise CatalogError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    if start < 0:
        raise CatalogError("start must not be negative.")
    order = q.get("orderBy")
    if order:
        direction, _, field = order.rpartition(":")
        if direction not in ("", "asc", "desc") or not field:
            raise CatalogError(f"Invalid orderBy '{order}'.")
        items = sorted(
            items,
            key=lambda i: (
                i.get(field) is None,
                str(i.get(field, ""))
                if not isinstance(i.get(field), (int, float))
                else f"{i.get(field):020.3f}",
            ),
            reverse=direction == "desc",
        )
    page = items[start : start + limit]
    fields = [f for f in q.get("properties", "").split(",") if f]
    out: dict[str, Any] = {}
    for item in page:
        shown = {k: v for k, v in item.items() if k != "id"}
        if fields:
            shown = {k: v for k, v in shown.items() if k in fields}
        out[item["id"]] = shown
    return out


def _schema(tx: Tx, t: Tenant, schema_id: str) -> dict[str, Any] | None:
    for schema in tx.items("schemas", t.scope):
        if schema_id in (schema.get("$id"), schema.get("meta:altId")):
            return schema
    return None


def _check_tags(tags: Any) -> None:
    if not isinstance(tags, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in tags.values()
    ):
        raise CatalogError("'tags' must map each tag name to a list of strings.")


def _check_profile(tx: Tx, t: Tenant, dataset: dict[str, Any]) -> None:
    _check_tags(dataset.get("tags", {}))
    if not profiles.is_profile_enabled(dataset):
        return
    schema_id = (dataset.get("schemaRef") or {}).get("id", "")
    schema = _schema(tx, t, schema_id)
    if schema is None or "union" not in (schema.get("meta:immutableTags") or []):
        raise CatalogError(
            f"Dataset cannot be enabled for Profile: schema {schema_id} is not enabled for "
            "Profile (meta:immutableTags must contain 'union').",
            code="CAT-2101",
        )
    if schema.get("meta:class") == profiles.PROFILE_CLASS:
        primary = [
            d
            for d in tx.items("descriptors", t.scope)
            if d.get("@type") == "xdm:descriptorIdentity"
            and d.get("xdm:sourceSchema") == schema.get("$id")
            and d.get("xdm:isPrimary")
        ]
        if not primary:
            raise CatalogError(
                f"Dataset cannot be enabled for Profile: schema {schema_id} has no primary "
                "identity descriptor.",
                code="CAT-2102",
            )


async def create_dataset(request: Request) -> JSONResponse:
    """POST /dataSets: 201 `["@/dataSets/<24 hex>"]`."""
    body = _body(await request.body())
    if not isinstance(body, dict):
        raise CatalogError("The request body must be a JSON object.")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise CatalogError("Field 'name' is required.")
    ref = body.get("schemaRef")
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise CatalogError("Field 'schemaRef' with 'id' and 'contentType' is required.")
    _check_tags(body.get("tags") or {})
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        if _schema(tx, t, ref["id"]) is None:
            raise CatalogError(f"Schema {ref['id']} is not found.", code="CAT-1404")
        did = hex_id(24)
        now = now_ms()
        dataset = {
            **{k: v for k, v in body.items() if k not in ("id", "created", "updated")},
            "id": did,
            "imsOrg": t.org,
            "tags": body.get("tags") or {},
            "created": now,
            "updated": now,
            "createdClient": t.client_id,
            "createdUser": f"{t.client_id}@AdobeID",
            "updatedUser": f"{t.client_id}@AdobeID",
            "version": "1.0.0",
            "viewId": hex_id(24),
            "files": f"@/dataSetFiles?dataSetId={did}",
        }
        dataset["tags"].setdefault("adobe/pqs/table", [body["name"].lower().replace(" ", "_")])
        _check_profile(tx, t, dataset)
        tx.put("dataSets", t.scope, did, dataset)
    return JSONResponse(
        [f"@/dataSets/{did}"],
        status_code=st.HTTP_201_CREATED,
        headers={"Location": f"{request.url.path.rstrip('/')}/{did}"},
    )


async def list_datasets(request: Request) -> JSONResponse:
    """GET /dataSets: an object keyed by id (default 20, max 100), `name=` filter."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        items = tx.items("dataSets", t.scope)
    name = request.query_params.get("name")
    if name is not None:
        items = [i for i in items if i.get("name") == name]
    return JSONResponse(_page(request, items))


async def get_dataset(request: Request) -> JSONResponse:
    """GET /dataSets/{id}: `{"<id>": {...}}`."""
    t = tenant(request)
    did = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        dataset = tx.get("dataSets", t.scope, did)
    if dataset is None:
        raise CatalogError(
            f"Dataset {did} is not found.", status=st.HTTP_404_NOT_FOUND, code="CAT-1404"
        )
    return JSONResponse({did: {k: v for k, v in dataset.items() if k != "id"}})


async def patch_dataset(request: Request) -> JSONResponse:
    """PATCH /dataSets/{id}: JSON Patch (or the older merge object); 200 `["@/dataSets/<id>"]`."""
    t = tenant(request)
    did = request.path_params["id"]
    body = _body(await request.body())
    with app_context(request).store.tx() as tx:
        dataset = tx.get("dataSets", t.scope, did)
        if dataset is None:
            raise CatalogError(
                f"Dataset {did} is not found.", status=st.HTTP_404_NOT_FOUND, code="CAT-1404"
            )
        if isinstance(body, list):
            try:
                patched = apply_patch(dataset, body)
            except PatchError as exc:
                raise CatalogError(str(exc)) from None
        elif isinstance(body, dict):
            patched = dict(dataset)
            for key, value in body.items():
                if key == "tags" and not isinstance(value, dict):
                    raise CatalogError("'tags' must be an object of tag name -> list of values.")
                if key == "tags":
                    patched["tags"] = {**dataset.get("tags", {}), **value}
                else:
                    patched[key] = value
        else:
            raise CatalogError("The body must be a JSON Patch array or an object.")
        if patched.get("id") != did or patched.get("schemaRef") != dataset.get("schemaRef"):
            raise CatalogError("Fields 'id' and 'schemaRef' cannot be updated.")
        _check_profile(tx, t, patched)
        patched["updated"] = now_ms()
        tx.put("dataSets", t.scope, did, patched)
    return JSONResponse([f"@/dataSets/{did}"])


async def delete_dataset(request: Request) -> JSONResponse:
    """DELETE /dataSets/{id}: 200 `["@/dataSets/<id>"]`."""
    t = tenant(request)
    did = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        if not tx.delete("dataSets", t.scope, did):
            raise CatalogError(
                f"Dataset {did} is not found.", status=st.HTTP_404_NOT_FOUND, code="CAT-1404"
            )
    return JSONResponse([f"@/dataSets/{did}"])


async def list_batches(request: Request) -> JSONResponse:
    """GET /batches?dataSet=&status=&createdAfter=&createdBefore=: object keyed by id."""
    t = tenant(request)
    q = request.query_params
    with app_context(request).store.tx() as tx:
        items = tx.items("batches", t.scope)
    dataset = q.get("dataSet")
    if dataset:
        items = [b for b in items if any(r.get("id") == dataset for r in b["relatedObjects"])]
    if q.get("status"):
        items = [b for b in items if b["status"] == q["status"]]
    try:
        if q.get("createdAfter"):
            items = [b for b in items if b["created"] > int(q["createdAfter"])]
        if q.get("createdBefore"):
            items = [b for b in items if b["created"] < int(q["createdBefore"])]
    except ValueError:
        raise CatalogError("createdAfter/createdBefore must be epoch milliseconds.") from None
    return JSONResponse(_page(request, items))


async def get_batch(request: Request) -> JSONResponse:
    """GET /batches/{id}: `{"<id>": {...}}`."""
    t = tenant(request)
    bid = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        batch = tx.get("batches", t.scope, bid)
    if batch is None:
        raise CatalogError(
            f"Batch {bid} is not found.", status=st.HTTP_404_NOT_FOUND, code="CAT-1404"
        )
    return JSONResponse({bid: {k: v for k, v in batch.items() if k != "id"}})


routes: list[BaseRoute] = [
    Route("/dataSets", list_datasets, methods=["GET"]),
    Route("/dataSets", create_dataset, methods=["POST"]),
    Route("/dataSets/{id}", get_dataset, methods=["GET"]),
    Route("/dataSets/{id}", patch_dataset, methods=["PATCH"]),
    Route("/dataSets/{id}", delete_dataset, methods=["DELETE"]),
    Route("/batches", list_batches, methods=["GET"]),
    Route("/batches/{id}", get_batch, methods=["GET"]),
]
