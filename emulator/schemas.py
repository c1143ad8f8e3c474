"""Schema Registry (`/data/foundation/schemaregistry`): /stats, tenant schemas, descriptors.

GETs honour `Accept`: `application/vnd.adobe.xed-id+json` lists ids only, `…xed+json` full
objects; a single lookup needs a version (`…xed+json; version=1`, `…xed-full+json; version=1`).
Schemas may be addressed by URL-encoded `$id`, `meta:altId` or their hex id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import unquote

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.context import Tenant, app_context, tenant
from emulator.errors import CatalogError, parse_json
from emulator.ids import hex_id, now_ms
from emulator.jsonpatch import PatchError, apply_patch
from emulator.profiles import EVENT_CLASS, PROFILE_CLASS
from emulator.store import Tx

__all__ = ["CLASSES", "routes", "tenant_id"]

CLASSES = {PROFILE_CLASS: "_xdm.context.profile", EVENT_CLASS: "_xdm.context.experienceevent"}
_XED = re.compile(
    r"^application/vnd\.adobe\.(xed|xed-id|xed-full|xed-notext|xed-full-notext|xed-full-desc)\+json(\s*;\s*version=([\d.]+))?$"
)


def tenant_id(org: str) -> str:
    """The tenant id of an org (stable, lower-case letters and digits, like Adobe's)."""
    return "emu" + hashlib.sha1(org.encode()).hexdigest()[:10]


def _accept(request: Request, *, single: bool) -> str:
    raw = request.headers.get("accept", "")
    match = _XED.match(raw.strip())
    if not match:
        raise CatalogError(
            "An Accept header of the form application/vnd.adobe.xed[-id|-full|...]+json is required.",
            status=st.HTTP_406_NOT_ACCEPTABLE,
            code="XDM-1009",
        )
    if single and match.group(1) != "xed-id" and not match.group(3):
        raise CatalogError(
            "A single lookup needs a version in the Accept header, e.g. "
            "application/vnd.adobe.xed+json; version=1.",
            status=st.HTTP_406_NOT_ACCEPTABLE,
            code="XDM-1010",
        )
    return match.group(1)


def _body(raw: bytes) -> Any:
    try:
        return parse_json(raw)
    except Exception as exc:
        raise CatalogError(getattr(exc, "message", str(exc)), code="XDM-1000") from None


def _find(tx: Tx, t: Tenant, ref: str) -> dict[str, Any] | None:
    key = unquote(ref)
    for schema in tx.items("schemas", t.scope):
        if key in (schema["$id"], schema["meta:altId"], schema["$id"].rsplit("/", 1)[-1]):
            return schema
    return None


def _classify(body: dict[str, Any]) -> tuple[str, list[str]]:
    refs = [a.get("$ref") for a in body.get("allOf", []) if isinstance(a, dict)]
    if not all(isinstance(r, str) for r in refs):
        raise CatalogError("Every allOf entry must be {'$ref': <id>}.", code="XDM-1001")
    classes = [r for r in refs if r in CLASSES]
    if len(classes) != 1:
        raise CatalogError(
            f"A schema must reference exactly one class in allOf (one of {sorted(CLASSES)}).",
            code="XDM-1002",
        )
    return classes[0], [str(r) for r in refs]


async def stats(request: Request) -> JSONResponse:
    """GET /stats: the tenant id and counts."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        count = len(tx.items("schemas", t.scope))
    return JSONResponse(
        {
            "imsOrg": t.org,
            "tenantId": tenant_id(t.org),
            "counts": {"schemas": count, "mixins": 0, "datatypes": 0, "classes": 0, "unions": 0},
            "recentlyCreatedResources": [],
            "recentlyUpdatedResources": [],
            "classUsage": [],
        }
    )


async def create_schema(request: Request) -> JSONResponse:
    """POST /tenant/schemas: 201 with `$id`, `meta:altId`, `meta:class`, `version`."""
    body = _body(await request.body())
    if not isinstance(body, dict) or not isinstance(body.get("title"), str):
        raise CatalogError("A schema needs a 'title' (string).", code="XDM-1001")
    cls, refs = _classify(body)
    t = tenant(request)
    tid = tenant_id(t.org)
    with app_context(request).store.tx() as tx:
        if any(s["title"] == body["title"] for s in tx.items("schemas", t.scope)):
            raise CatalogError(
                f"A schema titled '{body['title']}' already exists.",
                status=st.HTTP_409_CONFLICT,
                code="XDM-1521",
            )
        sid = hex_id(48)
        now = now_ms()
        schema = {
            **body,
            "$id": f"https://ns.adobe.com/{tid}/schemas/{sid}",
            "meta:altId": f"_{tid}.schemas.{sid}",
            "meta:resourceType": "schemas",
            "version": "1.0",
            "type": body.get("type", "object"),
            "meta:class": cls,
            "meta:extends": refs,
            "meta:containerId": "tenant",
            "meta:tenantNamespace": f"_{tid}",
            "imsOrg": t.org,
            "meta:registryMetadata": {
                "repo:createdDate": now,
                "repo:lastModifiedDate": now,
                "xdm:createdClientId": t.client_id,
                "xdm:lastModifiedClientId": t.client_id,
                "eTag": hex_id(40),
            },
        }
        tx.put("schemas", t.scope, sid, schema)
    return JSONResponse(schema, status_code=st.HTTP_201_CREATED)


async def list_schemas(request: Request) -> JSONResponse:
    """GET /tenant/schemas: `{"results": [...], "_page": {...}, "_links": {}}`."""
    form = _accept(request, single=False)
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schemas = tx.items("schemas", t.scope)
    if form == "xed-id":
        results = [{k: s[k] for k in ("$id", "meta:altId", "version", "title")} for s in schemas]
    else:
        results = schemas
    return JSONResponse(
        {
            "results": results,
            "_page": {"orderby": "title", "count": len(results)},
            "_links": {},
        }
    )


async def get_schema(request: Request) -> JSONResponse:
    """GET /tenant/schemas/{id} (URL-encoded $id, meta:altId or hex id)."""
    form = _accept(request, single=True)
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schema = _find(tx, t, request.path_params["id"])
        descriptors = tx.items("descriptors", t.scope)
    if schema is None:
        raise CatalogError(
            f"Schema {unquote(request.path_params['id'])} is not found.",
            status=st.HTTP_404_NOT_FOUND,
            code="XDM-1010",
        )
    if form == "xed-id":
        return JSONResponse({k: schema[k] for k in ("$id", "meta:altId", "version", "title")})
    if form == "xed-full-desc":
        schema = {
            **schema,
            "meta:descriptors": [
                d for d in descriptors if d.get("xdm:sourceSchema") == schema["$id"]
            ],
        }
    return JSONResponse(schema)


async def patch_schema(request: Request) -> JSONResponse:
    """PATCH /tenant/schemas/{id} with JSON Patch (e.g. add `/meta:immutableTags` ["union"])."""
    ops = _body(await request.body())
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schema = _find(tx, t, request.path_params["id"])
        if schema is None:
            raise CatalogError(
                f"Schema {unquote(request.path_params['id'])} is not found.",
                status=st.HTTP_404_NOT_FOUND,
                code="XDM-1010",
            )
        try:
            patched = apply_patch(schema, ops)
        except PatchError as exc:
            raise CatalogError(str(exc), code="XDM-1003") from None
        for key in ("$id", "meta:altId", "meta:class", "imsOrg"):
            if patched.get(key) != schema.get(key):
                raise CatalogError(f"Field '{key}' cannot be changed.", code="XDM-1004")
        patched["meta:registryMetadata"]["repo:lastModifiedDate"] = now_ms()
        tx.put("schemas", t.scope, schema["$id"].rsplit("/", 1)[-1], patched)
    return JSONResponse(patched)


async def delete_schema(request: Request) -> Response:
    """DELETE /tenant/schemas/{id}: 204."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schema = _find(tx, t, request.path_params["id"])
        if schema is None:
            raise CatalogError(
                f"Schema {unquote(request.path_params['id'])} is not found.",
                status=st.HTTP_404_NOT_FOUND,
                code="XDM-1010",
            )
        tx.delete("schemas", t.scope, schema["$id"].rsplit("/", 1)[-1])
    return Response(status_code=st.HTTP_204_NO_CONTENT)


async def create_descriptor(request: Request) -> JSONResponse:
    """POST /tenant/descriptors: 201 with `@id` (identity descriptors are checked)."""
    body = _body(await request.body())
    if not isinstance(body, dict) or not isinstance(body.get("@type"), str):
        raise CatalogError("A descriptor needs '@type'.", code="XDM-1001")
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        schema = _find(tx, t, str(body.get("xdm:sourceSchema", "")))
        if schema is None:
            raise CatalogError(
                f"Schema {body.get('xdm:sourceSchema')} is not found.",
                status=st.HTTP_400_BAD_REQUEST,
                code="XDM-1010",
            )
        if body["@type"] == "xdm:descriptorIdentity":
            missing = [k for k in ("xdm:sourceProperty", "xdm:namespace") if not body.get(k)]
            if missing:
                raise CatalogError(f"Identity descriptor needs {missing}.", code="XDM-1001")
            if body.get("xdm:isPrimary") and any(
                d.get("xdm:isPrimary")
                and d.get("xdm:sourceSchema") == schema["$id"]
                and d.get("@type") == "xdm:descriptorIdentity"
                for d in tx.items("descriptors", t.scope)
            ):
                raise CatalogError(
                    "The schema already has a primary identity descriptor.",
                    status=st.HTTP_409_CONFLICT,
                    code="XDM-1522",
                )
        did = hex_id(40)
        descriptor = {
            **body,
            "@id": did,
            "xdm:sourceSchema": schema["$id"],
            "meta:containerId": "tenant",
            "imsOrg": t.org,
        }
        tx.put("descriptors", t.scope, did, descriptor)
    return JSONResponse(descriptor, status_code=st.HTTP_201_CREATED)


async def list_descriptors(request: Request) -> JSONResponse:
    """GET /tenant/descriptors: descriptors grouped by `@type`.

    `Accept: application/vnd.adobe.xdm-link+json` gives their paths, `xdm-id+json` their ids,
    anything else the full descriptors.
    """
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        items = tx.items("descriptors", t.scope)
    accept = request.headers.get("accept", "")
    grouped: dict[str, list[Any]] = {}
    for d in items:
        if "xdm-link" in accept:
            shown: Any = f"/tenant/descriptors/{d['@id']}"
        elif "xdm-id" in accept:
            shown = d["@id"]
        else:
            shown = d
        grouped.setdefault(str(d["@type"]), []).append(shown)
    return JSONResponse(grouped)


async def get_descriptor(request: Request) -> JSONResponse:
    """GET /tenant/descriptors/{id}."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        found = tx.get("descriptors", t.scope, request.path_params["id"])
    if found is None:
        raise CatalogError(
            f"Descriptor {request.path_params['id']} is not found.",
            status=st.HTTP_404_NOT_FOUND,
            code="XDM-1010",
        )
    return JSONResponse(found)


routes: list[BaseRoute] = [
    Route("/stats", stats, methods=["GET"]),
    Route("/tenant/schemas", list_schemas, methods=["GET"]),
    Route("/tenant/schemas", create_schema, methods=["POST"]),
    Route("/tenant/schemas/{id:path}", get_schema, methods=["GET"]),
    Route("/tenant/schemas/{id:path}", patch_schema, methods=["PATCH"]),
    Route("/tenant/schemas/{id:path}", delete_schema, methods=["DELETE"]),
    Route("/tenant/descriptors", list_descriptors, methods=["GET"]),
    Route("/tenant/descriptors", create_descriptor, methods=["POST"]),
    Route("/tenant/descriptors/{id}", get_descriptor, methods=["GET"]),
]
