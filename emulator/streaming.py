"""Streaming ingestion (DCS): `/collection/{inletId}` and `/collection/batch/{inletId}`, and the
landing of accepted records as a streaming batch in the target dataset (and Profile).

A message is either an XDM envelope (`{header{schemaRef, imsOrgId, datasetId, flowId}, body{xdmMeta,
xdmEntity}}`) or a raw JSON object (webhook sources: Customer.io, HTTP API raw), routed to a flow by
`x-adobe-flow-id` (header or query), the envelope's `header.flowId`, or the inlet's only flow.
The flow's Mapping (if any) is applied, then the record is checked against the dataset's schema.
Accepted messages wait in the `pending` table (kind `landing`) until the landing delay passes.
An unknown inlet answers 404 (Adobe's answer is unconfirmed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from emulator.context import app_context
from emulator.errors import DcsAuthError, DcsError, EmulatorError, parse_json
from emulator.flowservice.inlets import INLETS
from emulator.gateway import check_token_in
from emulator.ids import now_ms, xaction_id
from emulator.lake import write_batch
from emulator.profiles import schema_of
from emulator.store import Pending, Scope, Store, Tx

__all__ = ["LANDING", "MAX_BODY_BYTES", "MAX_VALIDATION_CAUSES", "WITHHELD", "land", "routes"]

MAX_BODY_BYTES = 1024 * 1024
MAX_VALIDATION_CAUSES = 5
SYNC_VALIDATION_PER_MINUTE = 60
SYNC_RATE = "syncRate"
"""Kind of bookkeeping resource: syncValidation requests of an inlet in the current minute."""
LANDING = "landing"
WITHHELD = "withheld"
"""Kind of admin resource: landings into a dataset id (or "*" for all) are held back."""


class _Rejected(Exception):
    def __init__(self, message: str, causes: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes


def _load_inlet(request: Request, tx: Tx) -> tuple[Scope, dict[str, Any]]:
    inlet_id = request.path_params["inletId"]
    found = tx.find_any(INLETS, inlet_id)
    if found is None:
        raise DcsError(
            f"inletId: [{inlet_id}] Inlet not found.",
            status=st.HTTP_404_NOT_FOUND,
            title="Not Found",
        )
    return found


async def _body(request: Request, inlet_id: str) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise DcsError(
            f"inletId: [{inlet_id}] Request body exceeds 1 MB.",
            status=st.HTTP_413_CONTENT_TOO_LARGE,
            title="Payload Too Large",
        )
    try:
        return parse_json(raw)
    except EmulatorError as exc:
        raise DcsError(f"inletId: [{inlet_id}] {exc.message}", title="Invalid JSON") from None


def _check_auth(request: Request, tx: Tx, inlet: dict[str, Any]) -> None:
    if not inlet.get("authenticationRequired"):
        return
    try:
        check_token_in(tx, request.headers.get("authorization"))
    except EmulatorError:
        raise DcsAuthError(f"[{inlet['inletId']}] Ims service token is empty or invalid") from None


def _count_sync(tx: Tx, scope: Scope, inlet_id: str, now: int) -> None:
    """Enforce 60 syncValidation requests per minute per inlet (fixed one-minute windows)."""
    window = now // 60_000
    seen = tx.get(SYNC_RATE, scope, inlet_id) or {"window": window, "count": 0}
    if seen["window"] != window:
        seen = {"window": window, "count": 0}
    if seen["count"] >= SYNC_VALIDATION_PER_MINUTE:
        error = DcsError(
            f"inletId: [{inlet_id}] More than {SYNC_VALIDATION_PER_MINUTE} syncValidation "
            "requests in a minute.",
            status=st.HTTP_429_TOO_MANY_REQUESTS,
            title="Too Many Requests",
        )
        error.headers["Retry-After"] = str(60 - (now // 1000) % 60)
        raise error
    seen["count"] += 1
    tx.put(SYNC_RATE, scope, inlet_id, seen)


def _flow_for(
    tx: Tx, scope: Scope, inlet: dict[str, Any], flow_hint: str | None
) -> dict[str, Any] | None:
    ids = inlet["flowIds"]
    if flow_hint:
        if flow_hint not in ids:
            raise _Rejected(f"Flow {flow_hint} is not served by this inlet.")
        return tx.get("flows", scope, flow_hint)
    if len(ids) == 1:
        return tx.get("flows", scope, ids[0])
    if not ids:
        return None
    raise _Rejected("This inlet serves several flows; name one with x-adobe-flow-id.")


def _prepare(
    tx: Tx, scope: Scope, inlet: dict[str, Any], message: Any, flow_hint: str | None
) -> tuple[dict[str, Any], str, dict[str, Any] | None, list[str]]:
    """(flow or {}, dataset id, mapped record or None, problems) of one message."""
    from emulator.runner import MappingError, map_record, validate_xdm  # EMU-RUNNER's engine

    prefix = f"inletId: [{inlet['inletId']}] imsOrgId: [{scope[0]}]"
    if not isinstance(message, dict):
        raise _Rejected(f"{prefix} Message has unknown xdm format")
    envelope = "header" in message and "body" in message
    dataset_id = None
    if envelope:
        header, body = message.get("header"), message.get("body")
        if (
            not isinstance(header, dict)
            or not isinstance(body, dict)
            or not isinstance(body.get("xdmEntity"), dict)
        ):
            raise _Rejected(f"{prefix} Message has unknown xdm format")
        if header.get("imsOrgId") not in (None, scope[0]):
            raise _Rejected(f"{prefix} Message has an absent or wrong ims org in the header")
        flow_hint = flow_hint or header.get("flowId")
        dataset_id = header.get("datasetId")
        record: dict[str, Any] = body["xdmEntity"]
    else:
        record = message
    flow = _flow_for(tx, scope, inlet, flow_hint) or {}
    if flow and not dataset_id:
        target = tx.get("targetConnections", scope, flow["targetConnectionIds"][0]) or {}
        dataset_id = (target.get("params") or {}).get("dataSetId")
    if not dataset_id:
        raise _Rejected(f"{prefix} No dataset: the inlet has no flow and the header no datasetId")
    dataset = tx.get("dataSets", scope, str(dataset_id))
    if dataset is None:
        raise _Rejected(f"{prefix} Dataset {dataset_id} is not found")
    if flow and flow.get("state") != "enabled":
        raise _Rejected(f"{prefix} Flow {flow['id']} is disabled")
    schema = schema_of(tx, scope, dataset)
    for tr in flow.get("transformations") or []:
        mapping = tx.get("mappingSets", scope, str(tr.get("params", {}).get("mappingId")))
        try:
            record = map_record(mapping, record, schema=schema)
        except MappingError as exc:
            return flow, str(dataset_id), None, [f"{exc.code}: {exc.message}"]
    return flow, str(dataset_id), record, validate_xdm(schema, record)


def _queue(
    tx: Tx,
    scope: Scope,
    delay_s: float,
    flow: dict[str, Any],
    dataset_id: str,
    record: dict[str, Any] | None,
    problems: list[str],
    raw: Any,
) -> None:
    """Keep an accepted message until it lands (a failed record when it has problems)."""
    error = None
    if problems or record is None:
        # a record that could not be mapped carries the mapper's code as its first problem
        code = problems[0].split(":", 1)[0] if record is None and problems else "XDM-VALIDATION"
        error = {
            "file": None,
            "line": None,
            "code": code,
            "message": "; ".join(problems),
            "raw": _short(raw),
        }
    tx.add_pending(
        LANDING,
        now_ms() + int(delay_s * 1000),
        scope,
        {
            "datasetId": dataset_id,
            "flowId": flow.get("id"),
            "record": None if error else record,
            "error": error,
        },
    )


def _short(raw: Any) -> str:
    import json

    text = json.dumps(raw)
    return text if len(text) <= 4096 else text[:4096]


async def collect(request: Request) -> JSONResponse:
    """POST /collection/{inletId}: 200 `{inletId, xactionId, receivedTimeMs}`."""
    inlet_id = request.path_params["inletId"]
    message = await _body(request, inlet_id)
    ctx = app_context(request)
    sync = (
        request.query_params.get("syncValidation")
        or request.query_params.get("synchronousValidation")
        or ""
    ).lower() == "true"
    hint = request.headers.get("x-adobe-flow-id") or request.query_params.get("x-adobe-flow-id")
    received = now_ms()
    with ctx.store.tx() as tx:
        scope, inlet = _load_inlet(request, tx)
        _check_auth(request, tx, inlet)
        if sync:
            _count_sync(tx, scope, inlet_id, received)
    with ctx.store.tx() as tx:
        try:
            flow, dataset_id, record, problems = _prepare(tx, scope, inlet, message, hint)
        except _Rejected as exc:
            raise DcsError(exc.message, title="Invalid XDM Message Format") from None
        if sync and problems:
            causes = [
                {
                    "schemaLocation": "#",
                    "pointerToViolation": "#",
                    "keyword": "validation",
                    "message": problem,
                }
                for problem in problems[:MAX_VALIDATION_CAUSES]
            ]
            raise DcsError(
                f"inletId: [{inlet_id}] imsOrgId: [{scope[0]}] Message is invalid",
                title="Invalid XDM Message Format",
                cause={"_streamingValidation": causes},
            )
        _queue(tx, scope, ctx.config.landing_delay_s, flow, dataset_id, record, problems, message)
    body: dict[str, Any] = {
        "inletId": inlet_id,
        "xactionId": xaction_id(received),
        "receivedTimeMs": received,
    }
    body["syncValidation"] = {"status": "pass"} if sync else {"skipped": True}
    return JSONResponse(body)


async def collect_batch(request: Request) -> JSONResponse:
    """POST /collection/batch/{inletId} `{messages: [...]}`: 207, one result per message."""
    inlet_id = request.path_params["inletId"]
    payload = await _body(request, inlet_id)
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise DcsError(f'inletId: [{inlet_id}] The body must be {{"messages": [...]}}.')
    ctx = app_context(request)
    hint = request.headers.get("x-adobe-flow-id") or request.query_params.get("x-adobe-flow-id")
    received = now_ms()
    responses: list[dict[str, Any]] = []
    with ctx.store.tx() as tx:
        scope, inlet = _load_inlet(request, tx)
        _check_auth(request, tx, inlet)
        for number, message in enumerate(payload["messages"]):
            try:
                flow, dataset_id, record, problems = _prepare(tx, scope, inlet, message, hint)
            except _Rejected as exc:
                responses.append({"statusCode": 400, "message": exc.message})
                continue
            _queue(
                tx, scope, ctx.config.landing_delay_s, flow, dataset_id, record, problems, message
            )
            responses.append({"xactionId": xaction_id(received, number)})
    return JSONResponse(
        {
            "inletId": inlet_id,
            "batchId": xaction_id(received),
            "receivedTimeMs": received,
            "responses": responses,
        },
        status_code=st.HTTP_207_MULTI_STATUS,
    )


def land(store: Store, due: list[Pending]) -> int:
    """Land due streamed records as one streaming batch per dataset; returns batches written.

    Landings into a withheld dataset stay pending.
    """
    groups: dict[tuple[Scope, str, str | None], list[Pending]] = defaultdict(list)
    written = 0
    with store.tx() as tx:
        for work in due:
            dataset_id = work.payload["datasetId"]
            if tx.get(WITHHELD, work.scope, dataset_id) or tx.get(WITHHELD, work.scope, "*"):
                continue
            if not tx.remove_pending(work.id):
                continue
            groups[(work.scope, dataset_id, work.payload.get("flowId"))].append(work)
        for (scope, dataset_id, flow_id), items in groups.items():
            records = [w.payload["record"] for w in items if w.payload.get("record") is not None]
            errors = [w.payload["error"] for w in items if w.payload.get("error") is not None]
            write_batch(
                tx, scope, dataset_id, records, errors, input_format="json", flow_id=flow_id
            )
            written += 1
    return written


routes: list[BaseRoute] = [
    Route("/batch/{inletId}", collect_batch, methods=["POST"]),
    Route("/{inletId}", collect, methods=["POST"]),
]
