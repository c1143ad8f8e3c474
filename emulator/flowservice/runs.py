"""Flow Service runs: list, read, and `POST /runs` for more runs of a `once` flow."""

from __future__ import annotations

from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse

from emulator import dataflow
from emulator.context import app_context, tenant
from emulator.errors import FlowError, not_found_flow
from emulator.flowservice.common import read_body
from emulator.ids import now_ms
from emulator.listing import list_response
from emulator.specs import CLOUD_STORAGE_TO_AEP, FLOW_SPECS

__all__ = ["create", "get_one", "list_all"]


async def list_all(request: Request) -> JSONResponse:
    """GET /runs (usually `?property=flowId==<id>`)."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        items = tx.items("runs", t.scope)
    return JSONResponse(list_response(items, request.query_params, "/runs"))


async def get_one(request: Request) -> JSONResponse:
    """GET /runs/{id}: `{"items": [run]}`."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        run = tx.get("runs", t.scope, request.path_params["id"])
    if run is None:
        raise not_found_flow("runs", request.path_params["id"])
    return JSONResponse({"items": [run]})


_FILE_RUN_PARAMS = ("startTime", "windowStartTime", "windowEndTime")


def _check_file_run_params(params: dict[str, Any] | None) -> None:
    """A file source's run spec needs `startTime`, `windowStartTime`, `windowEndTime` (epoch s).

    Raises:
        FlowError: 1400-400 naming the first missing or non-integer field.
    """
    for name in _FILE_RUN_PARAMS:
        value = (params or {}).get(name)
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.isdigit())
        ):
            raise FlowError(
                "1400",
                f"params.{name} (epoch seconds) is required to run a file source's flow; "
                f"send {list(_FILE_RUN_PARAMS)}.",
            )


async def create(request: Request) -> JSONResponse:
    """POST /runs `{flowId, params}`: only flows scheduled `once` take ad-hoc runs; 201 `{id, etag}`."""
    body = await read_body(request)
    flow_id = body.get("flowId")
    if not isinstance(flow_id, str):
        raise FlowError("1400", "Field 'flowId' is required.")
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise FlowError("1400", "Field 'params' must be an object.")
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        flow = tx.get("flows", t.scope, flow_id)
        if flow is None:
            raise FlowError("1439", f"Flow {flow_id} is not found.")
        if FLOW_SPECS[flow["flowSpec"]["id"]].kind != "batch":
            raise FlowError("1422", "Runs can only be created for batch flows.")
        frequency = (flow.get("scheduleParams") or {}).get("frequency", "once")
        if frequency != "once":
            raise FlowError("1422", "Runs can only be created for flows scheduled 'once'.")
        if flow.get("state") != "enabled":
            raise FlowError("1422", f"Flow {flow_id} is {flow.get('state')}; enable it first.")
        if flow["flowSpec"]["id"] == CLOUD_STORAGE_TO_AEP:
            _check_file_run_params(params)
        run = dataflow.new_run(tx, t.scope, flow, params, t.client_id)
        tx.add_pending("run", now_ms(), t.scope, {"flowId": flow_id, "runId": run["id"]})
    return JSONResponse({"id": run["id"], "etag": run["etag"]}, status_code=st.HTTP_201_CREATED)
