"""Data Prep (`/data/foundation/conversion`): mapping sets in both formats, validate, preview.

`POST /mappingSets` answers **200** (not 201). Stored mappings carry both key sets (`source` +
`sourceAttribute`, `destination` + `destinationXdmPath`) whichever form was sent, as AEP does.
"""

from __future__ import annotations

from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from emulator.context import Tenant, app_context, tenant
from emulator.errors import CatalogError, parse_json
from emulator.ids import hex_id, now_ms
from emulator.store import Tx

__all__ = ["normalise_mapping", "routes"]

_CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"


def _body(raw: bytes) -> Any:
    try:
        return parse_json(raw)
    except Exception as exc:
        raise CatalogError(getattr(exc, "message", str(exc)), code="MAPPER-1000") from None


def _schema_id(body: dict[str, Any]) -> str | None:
    ref = ((body.get("outputSchema") or {}).get("schemaRef") or {}).get("id")
    return ref or body.get("xdmSchema")


def normalise_mapping(number: int, mapping: Any) -> dict[str, Any]:
    """One mapping with both the old and the new key sets.

    Raises:
        CatalogError: the mapping has no source or no destination.
    """
    if not isinstance(mapping, dict):
        raise CatalogError(f"mappings[{number}] must be an object.", code="MAPPER-1001")
    source = mapping.get("source", mapping.get("sourceAttribute"))
    destination = mapping.get("destination", mapping.get("destinationXdmPath"))
    if not isinstance(source, str) or not source:
        raise CatalogError(f"mappings[{number}] has no source/sourceAttribute.", code="MAPPER-1001")
    if not isinstance(destination, str) or not destination:
        raise CatalogError(
            f"mappings[{number}] has no destination/destinationXdmPath.", code="MAPPER-1001"
        )
    source_type = str(mapping.get("sourceType", "ATTRIBUTE"))
    return {
        **mapping,
        "id": mapping.get("id") or hex_id(32),
        "sourceType": source_type,
        "source": source,
        "sourceAttribute": source,
        "destination": destination,
        "destinationXdmPath": destination,
        "identity": bool(mapping.get("identity", False)),
        "primaryIdentity": bool(mapping.get("primaryIdentity", False)),
        "version": mapping.get("version", 0),
    }


def _build(tx: Tx, t: Tenant, body: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise CatalogError("The request body must be a JSON object.", code="MAPPER-1000")
    schema_id = _schema_id(body)
    if not isinstance(schema_id, str):
        raise CatalogError(
            "outputSchema.schemaRef.id (or xdmSchema) is required.", code="MAPPER-1002"
        )
    if not any(schema_id in (s["$id"], s["meta:altId"]) for s in tx.items("schemas", t.scope)):
        raise CatalogError(f"Schema {schema_id} is not found.", code="MAPPER-1404")
    mappings = body.get("mappings")
    if not isinstance(mappings, list) or not mappings:
        raise CatalogError("mappings must be a non-empty array.", code="MAPPER-1001")
    return schema_id, [normalise_mapping(n, m) for n, m in enumerate(mappings)]


def _stored(
    mid: str,
    version: int,
    schema_id: str,
    mappings: list[dict[str, Any]],
    body: dict[str, Any],
    t: Tenant,
    created: int,
) -> dict[str, Any]:
    now = now_ms()
    user = f"{t.client_id}@AdobeID"
    stored: dict[str, Any] = {
        "id": mid,
        "version": version,
        "createdDate": created,
        "modifiedDate": now,
        "createdBy": user,
        "modifiedBy": user,
        "supportVersion": "1",
        "outputSchema": {"schemaRef": {"id": schema_id, "contentType": _CONTENT_TYPE}},
        "xdmSchema": schema_id,
        "xdmVersion": body.get("xdmVersion", "1.0"),
        "schemaRef": {"id": schema_id, "contentType": _CONTENT_TYPE},
        "mappings": mappings,
        "status": "PUBLISHED",
        "strictMapping": bool(body.get("strictMapping", False)),
        "allowNullValues": bool(body.get("allowNullValues", False)),
    }
    if isinstance(body.get("inputSchema"), dict):
        stored["inputSchema"] = body["inputSchema"]
    return stored


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: item[k]
        for k in ("id", "version", "createdDate", "modifiedDate", "createdBy", "modifiedBy")
    }


async def create(request: Request) -> JSONResponse:
    """POST /mappingSets: **200** `{id (32 hex), version, createdDate, modifiedDate, ...}`."""
    body = _body(await request.body())
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schema_id, mappings = _build(tx, t, body)
        mid = hex_id(32)
        item = _stored(mid, 0, schema_id, mappings, body, t, now_ms())
        tx.put("mappingSets", t.scope, mid, item)
        tx.put("mappingSetVersions", t.scope, f"{mid}:0", item)
    return JSONResponse(_summary(item))


async def update(request: Request) -> JSONResponse:
    """PUT /mappingSets/{id}: a new version."""
    body = _body(await request.body())
    t = tenant(request)
    mid = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        current = tx.get("mappingSets", t.scope, mid)
        if current is None:
            raise CatalogError(
                f"Mapping set {mid} is not found.", status=st.HTTP_404_NOT_FOUND, code="MAPPER-1404"
            )
        schema_id, mappings = _build(tx, t, body)
        item = _stored(
            mid, int(current["version"]) + 1, schema_id, mappings, body, t, current["createdDate"]
        )
        tx.put("mappingSets", t.scope, mid, item)
        tx.put("mappingSetVersions", t.scope, f"{mid}:{item['version']}", item)
    return JSONResponse(_summary(item))


async def get_one(request: Request) -> JSONResponse:
    """GET /mappingSets/{id}[?version=n]."""
    t = tenant(request)
    mid = request.path_params["id"]
    version = request.query_params.get("version")
    with app_context(request).store.tx() as tx:
        item = (
            tx.get("mappingSetVersions", t.scope, f"{mid}:{version}")
            if version is not None
            else tx.get("mappingSets", t.scope, mid)
        )
    if item is None:
        raise CatalogError(
            f"Mapping set {mid} is not found.", status=st.HTTP_404_NOT_FOUND, code="MAPPER-1404"
        )
    return JSONResponse(item)


async def list_all(request: Request) -> JSONResponse:
    """GET /mappingSets?limit=&start=: `{"data": [...], "_page": {count, limit}}`."""
    t = tenant(request)
    q = request.query_params
    try:
        limit = int(q.get("limit", 100))
        start = int(q.get("start", 0))
    except ValueError:
        raise CatalogError("limit and start must be integers.", code="MAPPER-1003") from None
    with app_context(request).store.tx() as tx:
        items = tx.items("mappingSets", t.scope)
    if q.get("name"):
        items = [i for i in items if i.get("name") == q["name"]]
    page = items[start : start + limit]
    return JSONResponse({"data": page, "_page": {"count": len(page), "limit": limit}})


async def validate(request: Request) -> JSONResponse:
    """POST /mappingSets/validate: one `{status, errors}` per mapping, in order."""
    from emulator.runner import validate_mappings  # the engine EMU-RUNNER provides

    body = _body(await request.body())
    if not isinstance(body, dict) or not isinstance(body.get("mappings"), list):
        raise CatalogError("mappings must be an array.", code="MAPPER-1001")
    results: list[dict[str, Any]] = []
    for number, mapping in enumerate(body["mappings"]):
        try:
            normalised = normalise_mapping(number, mapping)
        except CatalogError as exc:
            results.append(
                {"status": "FAILED", "errors": [{"code": exc.code, "message": exc.message}]}
            )
            continue
        problem = validate_mappings([normalised])[0]
        if problem is None:
            results.append({"status": "SUCCESS", "errors": None})
        else:
            results.append(
                {"status": "FAILED", "errors": [{"code": problem.code, "message": problem.message}]}
            )
    return JSONResponse({"validationResponse": results})


async def preview(request: Request) -> JSONResponse:
    """POST /mappingSets/preview `{data: [rows], mappingSet: {...}}`: `[{data, errors}]`."""
    from emulator.runner import MappingError, map_record  # the engine EMU-RUNNER provides

    body = _body(await request.body())
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise CatalogError("'data' must be an array of sample records.", code="MAPPER-1001")
    mapping_set = body.get("mappingSet")
    if not isinstance(mapping_set, dict) or not isinstance(mapping_set.get("mappings"), list):
        raise CatalogError("'mappingSet' with 'mappings' is required.", code="MAPPER-1001")
    normalised = {
        **mapping_set,
        "mappings": [normalise_mapping(n, m) for n, m in enumerate(mapping_set["mappings"])],
    }
    if not all(isinstance(row, dict) for row in body["data"]):
        raise CatalogError("Every entry of 'data' must be a JSON object.", code="MAPPER-1001")
    out: list[dict[str, Any]] = []
    for row in body["data"]:
        try:
            out.append({"data": map_record(normalised, row), "errors": None})
        except MappingError as exc:
            out.append({"data": None, "errors": [{"code": exc.code, "message": exc.message}]})
    return JSONResponse(out)


routes: list[BaseRoute] = [
    Route("/mappingSets", list_all, methods=["GET"]),
    Route("/mappingSets", create, methods=["POST"]),
    Route("/mappingSets/validate", validate, methods=["POST"]),
    Route("/mappingSets/preview", preview, methods=["POST"]),
    Route("/mappingSets/{id}", get_one, methods=["GET"]),
    Route("/mappingSets/{id}", update, methods=["PUT"]),
]
