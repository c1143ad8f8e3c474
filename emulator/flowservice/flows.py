"""Flow Service dataflows: create (with spec validation), read, list, patch, delete, enable/disable."""

from __future__ import annotations

from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator import dataflow
from emulator.context import Tenant, app_context, tenant
from emulator.errors import FlowError, not_found_flow, parse_json
from emulator.flowservice.common import check_if_match, new_item, read_body, touch
from emulator.flowservice.inlets import INLETS, inlet_url, new_inlet, served
from emulator.ids import now_ms, uuid_id
from emulator.jsonpatch import PatchError, apply_patch
from emulator.listing import list_response
from emulator.specs import DATA_LAKE, FLOW_SPECS, FlowSpecFacts
from emulator.store import Tx

__all__ = ["action", "create", "delete", "get_one", "list_all", "patch"]

_FREQUENCIES = ("once", "minute", "hour", "day", "week")
_SERVER_FIELDS = {
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
    "state",
    "inheritedAttributes",
    "runs",
    "lastOperation",
    "lastRunDetails",
    "providerRefId",
    "flowSpec",
    "sourceConnectionIds",
    "targetConnectionIds",
}


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise FlowError("1400", f"{field} must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise FlowError("1400", f"{field} must be an integer (or a string of digits), got {value!r}.")


def validate_schedule(params: Any) -> None:
    """Enforce the scheduleSpec of the batch flow specs (aep-api.md §3.5).

    Raises:
        FlowError: 1400-400 naming the rule broken.
    """
    if not isinstance(params, dict):
        raise FlowError("1400", "scheduleParams must be an object.")
    frequency = params.get("frequency")
    if frequency not in _FREQUENCIES:
        raise FlowError(
            "1400",
            f"scheduleParams.frequency must be one of {list(_FREQUENCIES)}, got {frequency!r}.",
        )
    if "startTime" not in params:
        raise FlowError("1400", "scheduleParams.startTime (epoch seconds) is required.")
    _int(params["startTime"], "scheduleParams.startTime")
    if frequency == "once":
        extra = [k for k in ("interval", "backfill") if k in params]
        if extra:
            raise FlowError(
                "1400", f"scheduleParams.{extra[0]} is not allowed when frequency is 'once'."
            )
        return
    if "interval" not in params:
        raise FlowError(
            "1400", f"scheduleParams.interval is required when frequency is '{frequency}'."
        )
    interval = _int(params["interval"], "scheduleParams.interval")
    minimum = 15 if frequency == "minute" else 1
    if interval < minimum:
        raise FlowError(
            "1400",
            f"scheduleParams.interval must be at least {minimum} when frequency is '{frequency}'.",
        )
    if "backfill" in params and not isinstance(params["backfill"], bool):
        raise FlowError("1400", "scheduleParams.backfill must be a boolean.")


def _ids(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise FlowError("1400", f"{field} must be a non-empty array of connection ids.")
    return value


def _validate_transformations(
    tx: Tx, t: Tenant, body: dict[str, Any], facts: FlowSpecFacts, dataset_ids: list[str]
) -> None:
    transformations = body.get("transformations", [])
    if not isinstance(transformations, list):
        raise FlowError("1400", "transformations must be an array.")
    if facts.mapping == "required" and not transformations:
        raise FlowError("1400", f"Flow spec {facts.name} requires a Mapping transformation.")
    if facts.mapping == "none" and transformations:
        raise FlowError("1400", f"Flow spec {facts.name} takes no transformations.")
    for number, tr in enumerate(transformations):
        if not isinstance(tr, dict) or tr.get("name") != "Mapping":
            raise FlowError("1400", f"transformations[{number}].name must be 'Mapping'.")
        params = tr.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("mappingId"), str):
            raise FlowError("1400", f"transformations[{number}].params.mappingId is required.")
        mapping = tx.get("mappingSets", t.scope, params["mappingId"])
        if mapping is None:
            raise FlowError("1412", f"Mapping set {params['mappingId']} is not found.")
        version = _int(params.get("mappingVersion", 0), "mappingVersion")
        if version < 0 or version > int(mapping.get("version", 0)):
            raise FlowError("1412", f"Invalid mapping version {version} for {params['mappingId']}.")
        schema_id = dataflow.mapping_schema_id(mapping)
        for dataset_id in dataset_ids:
            dataset = tx.get("dataSets", t.scope, dataset_id) or {}
            ds_schema = (dataset.get("schemaRef") or {}).get("id")
            if schema_id and ds_schema and schema_id != ds_schema:
                raise FlowError(
                    "1425",
                    f"The schema of target dataset {dataset_id} ({ds_schema}) is not the schema "
                    f"of mapping {params['mappingId']} ({schema_id}).",
                )


def _validate(
    tx: Tx, t: Tenant, body: dict[str, Any]
) -> tuple[FlowSpecFacts, list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise FlowError("1400", "Field 'name' is required and must be a non-empty string.")
    spec = body.get("flowSpec")
    if not isinstance(spec, dict) or spec.get("id") not in FLOW_SPECS:
        given = spec.get("id") if isinstance(spec, dict) else spec
        raise FlowError("1413", f"Invalid flow spec id '{given}'.")
    facts = FLOW_SPECS[spec["id"]]
    sources = []
    for sid in _ids(body, "sourceConnectionIds"):
        source = tx.get("sourceConnections", t.scope, sid)
        if source is None:
            raise FlowError("1439", f"Source connection {sid} is not found.")
        if source["connectionSpec"]["id"] not in facts.sources:
            raise FlowError(
                "1413",
                f"Source connection {sid} has connection spec {source['connectionSpec']['id']}, "
                f"which flow spec {facts.name} does not support.",
            )
        sources.append(source)
    targets = []
    for tid in _ids(body, "targetConnectionIds"):
        target = tx.get("targetConnections", t.scope, tid)
        if target is None:
            raise FlowError("1439", f"Target connection {tid} is not found.")
        if target["connectionSpec"]["id"] != DATA_LAKE:
            raise FlowError("1413", f"Target connection {tid} is not a data lake connection.")
        targets.append(target)
    dataset_ids = [
        str((tc.get("params") or {}).get("dataSetId"))
        for tc in targets
        if (tc.get("params") or {}).get("dataSetId")
    ]
    _validate_transformations(tx, t, body, facts, dataset_ids)
    if facts.kind == "batch" and "scheduleParams" in body:
        validate_schedule(body["scheduleParams"])
    if "options" in body and not isinstance(body["options"], dict):
        raise FlowError("1400", "options must be an object.")
    return facts, sources, targets


def _inherited(
    tx: Tx, t: Tenant, sources: list[dict[str, Any]], targets: list[dict[str, Any]]
) -> dict[str, Any]:
    def entry(conn: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": conn["id"], "connectionSpec": conn["connectionSpec"]}
        base_id = conn.get("baseConnectionId")
        base = tx.get("connections", t.scope, base_id) if base_id else None
        if base is not None:
            out["baseConnection"] = {"id": base["id"], "connectionSpec": base["connectionSpec"]}
        return out

    return {
        "sourceConnections": [entry(s) for s in sources],
        "targetConnections": [entry(tc) for tc in targets],
        "properties": {"isSourceFlow": True},
    }


def _assign_inlet(
    request: Request, tx: Tx, t: Tenant, flow: dict[str, Any], sources: list[dict[str, Any]]
) -> None:
    inlet_id = None
    for source in sources:
        base = tx.get("connections", t.scope, source.get("baseConnectionId") or "")
        params = (base or {}).get("auth", {}).get("params", {}) if base else {}
        if isinstance(params, dict) and params.get("inletId"):
            inlet_id = str(params["inletId"])
            break
    if inlet_id is None:
        inlet_id = new_inlet(tx, t)
    inlet = tx.get(INLETS, t.scope, inlet_id)
    assert inlet is not None  # created above or by the base connection
    inlet["flowIds"].append(flow["id"])
    tx.put(INLETS, t.scope, inlet_id, inlet)
    options = dict(flow.get("options") or {})
    options["inletUrl"] = inlet_url(request, inlet_id)
    flow["options"] = options


def _check_start_time(flow: dict[str, Any], patched: dict[str, Any]) -> None:
    """`startTime` cannot change once the original start time has passed (aep-api.md §2.5)."""
    before = (flow.get("scheduleParams") or {}).get("startTime")
    after = (patched.get("scheduleParams") or {}).get("startTime")
    if before is None or str(before) == str(after):
        return
    if int(str(before)) * 1000 <= now_ms():
        raise FlowError(
            "1400",
            "scheduleParams.startTime cannot be changed once the original start time has passed.",
        )


async def create(request: Request) -> JSONResponse:
    """POST /flows: validate against the flow spec; 201 `{id, etag}` and a Location header."""
    body = await read_body(request)
    if "state" in body:
        raise FlowError("1410", "Field 'state' is not allowed in the request body of a create.")
    t = tenant(request)
    ctx = app_context(request)
    with ctx.store.tx() as tx:
        facts, sources, targets = _validate(tx, t, body)
        clean = {k: v for k, v in body.items() if k not in _SERVER_FIELDS}
        clean["flowSpec"] = {"id": facts.id, "version": str(body["flowSpec"].get("version", "1.0"))}
        clean["sourceConnectionIds"] = list(body["sourceConnectionIds"])
        clean["targetConnectionIds"] = list(body["targetConnectionIds"])
        flow = new_item(t, uuid_id(), clean)
        now = now_ms()
        flow.update(
            {
                "state": "enabled",
                "inheritedAttributes": _inherited(tx, t, sources, targets),
                "runs": f"/runs?property=flowId=={flow['id']}",
                "providerRefId": uuid_id(),
                "lastOperation": {
                    "started": now,
                    "updated": now,
                    "operation": "create",
                    "percentCompleted": 100,
                    "status": {"value": "completed", "errors": []},
                    "ops": [],
                },
            }
        )
        if facts.kind == "streaming":
            _assign_inlet(request, tx, t, flow, sources)
        tx.put("flows", t.scope, flow["id"], flow)
        if facts.kind == "batch":
            dataflow.schedule_flow(tx, t.scope, flow, ctx.config)
    return JSONResponse(
        {"id": flow["id"], "etag": flow["etag"]},
        status_code=st.HTTP_201_CREATED,
        headers={"Location": f"{request.url.path.rstrip('/')}/{flow['id']}"},
    )


async def get_one(request: Request) -> JSONResponse:
    """GET /flows/{id}: `{"items": [flow]}`."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        flow = tx.get("flows", t.scope, request.path_params["id"])
    if flow is None:
        raise not_found_flow("flows", request.path_params["id"])
    return JSONResponse({"items": [served(request, flow)]})


async def list_all(request: Request) -> JSONResponse:
    """GET /flows with filters, ordering and paging."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        items = [served(request, f) for f in tx.items("flows", t.scope)]
    return JSONResponse(list_response(items, request.query_params, "/flows"))


async def patch(request: Request) -> JSONResponse:
    """PATCH /flows/{id} with If-Match and JSON Patch; the patched flow is re-validated."""
    t = tenant(request)
    rid = request.path_params["id"]
    ops = parse_json(await request.body())
    with app_context(request).store.tx() as tx:
        flow = tx.get("flows", t.scope, rid)
        if flow is None:
            raise not_found_flow("flows", rid)
        check_if_match(request, flow)
        try:
            patched = apply_patch(flow, ops)
        except PatchError as exc:
            raise FlowError("1434" if exc.unsupported_op else "1400", str(exc)) from None
        for key in (
            "id",
            "flowSpec",
            "createdAt",
            "createdBy",
            "imsOrgId",
            "sandboxName",
            "sandboxId",
            "etag",
            "version",
            "state",
        ):
            if patched.get(key) != flow.get(key):
                raise FlowError("1400", f"Field '{key}' cannot be updated.")
        _validate(tx, t, patched)
        _check_start_time(flow, patched)
        tag = touch(patched, t)
        patched["lastOperation"] = {
            "started": patched["updatedAt"],
            "updated": patched["updatedAt"],
            "operation": "update",
            "percentCompleted": 100,
            "status": {"value": "completed", "errors": []},
            "ops": [],
        }
        tx.put("flows", t.scope, rid, patched)
    return JSONResponse({"id": rid, "etag": tag})


async def delete(request: Request) -> Response:
    """DELETE /flows/{id}: 204; its inlet stops routing to it."""
    t = tenant(request)
    rid = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        flow = tx.get("flows", t.scope, rid)
        if flow is None:
            raise not_found_flow("flows", rid)
        for inlet in tx.items(INLETS, t.scope):
            if rid in inlet["flowIds"]:
                inlet["flowIds"].remove(rid)
                tx.put(INLETS, t.scope, inlet["inletId"], inlet)
        tx.delete("flows", t.scope, rid)
    return Response(status_code=st.HTTP_204_NO_CONTENT)


async def action(request: Request) -> JSONResponse:
    """POST /flows/{id}/action?op=enable|disable (any case; the spec's ENABLE/subOp form too)."""
    t = tenant(request)
    rid = request.path_params["id"]
    op = request.query_params.get("op", "").lower()
    if op not in ("enable", "disable"):
        raise FlowError(
            "1422", f"Action '{request.query_params.get('op', '')}' is not applicable to a flow."
        )
    with app_context(request).store.tx() as tx:
        flow = tx.get("flows", t.scope, rid)
        if flow is None:
            raise not_found_flow("flows", rid)
        if request.headers.get("if-match"):
            check_if_match(request, flow)
        flow["state"] = "enabled" if op == "enable" else "disabled"
        tag = touch(flow, t)
        flow["lastOperation"] = {
            "started": flow["updatedAt"],
            "updated": flow["updatedAt"],
            "operation": op,
            "percentCompleted": 100,
            "status": {"value": "completed", "errors": []},
            "ops": [],
        }
        tx.put("flows", t.scope, rid, flow)
    return JSONResponse({"id": rid, "etag": tag})
