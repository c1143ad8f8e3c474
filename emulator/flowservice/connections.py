"""Flow Service base, source and target connections: create, read, list, patch, delete."""

from __future__ import annotations

from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator.context import Tenant, app_context, tenant
from emulator.errors import FlowError, not_found_flow, parse_json
from emulator.flowservice.common import MASK, check_if_match, masked, new_item, read_body, touch
from emulator.flowservice.inlets import inlet_url, new_inlet, served
from emulator.ids import uuid_id
from emulator.jsonpatch import PatchError, apply_patch
from emulator.listing import list_response
from emulator.specs import CONNECTION_SPECS, DATA_LAKE, HTTP_API
from emulator.store import Tx

__all__ = ["KINDS", "create", "delete", "get_one", "list_all", "patch"]

KINDS = ("connections", "sourceConnections", "targetConnections")
_READ_ONLY = {
    "id",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
    "createdClient",
    "updatedClient",
    "sandboxId",
    "sandboxName",
    "imsOrgId",
    "version",
    "etag",
}


def _spec_id(body: dict[str, Any]) -> str:
    spec = body.get("connectionSpec")
    if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
        raise FlowError("1413", "connectionSpec.id is required and must be a string.")
    if spec["id"] not in CONNECTION_SPECS:
        raise FlowError("1413", f"Invalid connection spec id '{spec['id']}'.")
    return str(spec["id"])


def _validate(tx: Tx, t: Tenant, kind: str, body: dict[str, Any]) -> None:
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise FlowError("1400", "Field 'name' is required and must be a non-empty string.")
    spec = _spec_id(body)
    if kind == "connections":
        auth = body.get("auth")
        if spec != DATA_LAKE and not (
            isinstance(auth, dict) and isinstance(auth.get("params"), dict)
        ):
            raise FlowError("1400", "Field 'auth' with 'specName' and 'params' is required.")
        params = auth.get("params") if isinstance(auth, dict) else None
        masked_keys = [k for k, v in (params or {}).items() if v == MASK]
        if masked_keys:
            raise FlowError(
                "1400",
                f"auth.params.{masked_keys[0]} is the masked placeholder {MASK!r} a GET shows; "
                "send the real value (or leave the field out of the patch).",
            )
        names = [a["name"] for a in CONNECTION_SPECS[spec]["authSpec"]]
        if isinstance(auth, dict) and names and auth.get("specName") not in names:
            raise FlowError(
                "1400", f"auth.specName must be one of {names} for connection spec {spec}."
            )
    if kind == "sourceConnections":
        base_id = body.get("baseConnectionId")
        if base_id is not None:
            base = tx.get("connections", t.scope, str(base_id))
            if base is None:
                raise FlowError("1439", f"Base connection {base_id} is not found.")
            if base["connectionSpec"]["id"] != spec:
                raise FlowError(
                    "1400",
                    f"connectionSpec {spec} differs from the base connection's "
                    f"{base['connectionSpec']['id']}.",
                )
    if kind == "targetConnections":
        params = body.get("params")
        dataset_id = params.get("dataSetId") if isinstance(params, dict) else None
        if dataset_id is not None and tx.get("dataSets", t.scope, str(dataset_id)) is None:
            raise FlowError("1439", f"Dataset {dataset_id} is not found.")


async def create(request: Request, *, kind: str) -> JSONResponse:
    """POST a connection: 201 `{id, etag}`."""
    body = await read_body(request)
    t = tenant(request)
    ctx = app_context(request)
    with ctx.store.tx() as tx:
        _validate(tx, t, kind, body)
        for key in _READ_ONLY:
            body.pop(key, None)
        item = new_item(t, uuid_id(), body)
        item["state"] = "enabled"
        if kind == "connections" and item["connectionSpec"]["id"] == HTTP_API:
            inlet = new_inlet(tx, t, base_connection_id=item["id"], auth=item.get("auth"))
            item["auth"]["params"]["inletId"] = inlet
            item["auth"]["params"]["inletUrl"] = inlet_url(request, inlet)
        tx.put(kind, t.scope, item["id"], item)
    return JSONResponse({"id": item["id"], "etag": item["etag"]}, status_code=st.HTTP_201_CREATED)


async def get_one(request: Request, *, kind: str) -> JSONResponse:
    """GET one connection: `{"items": [item]}` with credentials masked."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        item = tx.get(kind, t.scope, request.path_params["id"])
    if item is None:
        raise not_found_flow(kind, request.path_params["id"])
    return JSONResponse({"items": [served(request, masked(item))]})


async def list_all(request: Request, *, kind: str) -> JSONResponse:
    """GET the collection with filters, ordering and paging."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        items = [served(request, masked(i)) for i in tx.items(kind, t.scope)]
    return JSONResponse(list_response(items, request.query_params, f"/{kind}"))


async def patch(request: Request, *, kind: str) -> JSONResponse:
    """PATCH with If-Match and a JSON Patch body: 200 `{id, etag}` with a new etag."""
    t = tenant(request)
    rid = request.path_params["id"]
    ops = parse_json(await request.body())
    with app_context(request).store.tx() as tx:
        item = tx.get(kind, t.scope, rid)
        if item is None:
            raise not_found_flow(kind, rid)
        check_if_match(request, item)
        try:
            patched = apply_patch(item, ops)
        except PatchError as exc:
            raise FlowError("1434" if exc.unsupported_op else "1400", str(exc)) from None
        if patched.get("connectionSpec") != item.get("connectionSpec"):
            raise FlowError("1414", "The connection spec of a connection cannot be updated.")
        for key in _READ_ONLY:
            if patched.get(key) != item.get(key):
                raise FlowError("1400", f"Field '{key}' cannot be updated.")
        _validate(tx, t, kind, patched)
        tag = touch(patched, t)
        tx.put(kind, t.scope, rid, patched)
    return JSONResponse({"id": rid, "etag": tag})


async def delete(request: Request, *, kind: str) -> Response:
    """DELETE: 204; a base connection used by a flow's source connection is refused (1418)."""
    t = tenant(request)
    rid = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        if tx.get(kind, t.scope, rid) is None:
            raise not_found_flow(kind, rid)
        if kind == "connections":
            sources = {
                s["id"]
                for s in tx.items("sourceConnections", t.scope)
                if s.get("baseConnectionId") == rid
            }
            users = [
                f["id"]
                for f in tx.items("flows", t.scope)
                if sources & set(f.get("sourceConnectionIds", []))
            ]
            if users:
                raise FlowError(
                    "1418",
                    f"Base connection {rid} is in use by flows {', '.join(users)} "
                    "and cannot be deleted.",
                )
        tx.delete(kind, t.scope, rid)
    return Response(status_code=st.HTTP_204_NO_CONTENT)
