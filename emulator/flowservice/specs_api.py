"""Flow Service connection specs and flow specs (read-only, org-agnostic)."""

from __future__ import annotations

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse

from emulator.errors import FlowError
from emulator.listing import list_response
from emulator.specs import connection_spec_items, flow_spec_items

__all__ = ["connection_spec", "connection_specs", "flow_spec", "flow_specs"]


async def connection_specs(request: Request) -> JSONResponse:
    """GET /connectionSpecs (filterable, e.g. `property=name=="stripe"`)."""
    return JSONResponse(
        list_response(connection_spec_items(), request.query_params, "/connectionSpecs")
    )


async def connection_spec(request: Request) -> JSONResponse:
    """GET /connectionSpecs/{id}: `{"items": [spec]}`."""
    found = [s for s in connection_spec_items() if s["id"] == request.path_params["id"]]
    if not found:
        raise FlowError(
            "1439",
            f"Connection spec {request.path_params['id']} is not found.",
            status=st.HTTP_404_NOT_FOUND,
            title="Resource not found",
            resource_type="connectionSpecs",
        )
    return JSONResponse({"items": found})


async def flow_specs(request: Request) -> JSONResponse:
    """GET /flowSpecs (filterable, e.g. `property=sourceConnectionSpecIds[]==<id>`)."""
    return JSONResponse(list_response(flow_spec_items(), request.query_params, "/flowSpecs"))


async def flow_spec(request: Request) -> JSONResponse:
    """GET /flowSpecs/{id}: `{"items": [spec]}`."""
    found = [s for s in flow_spec_items() if s["id"] == request.path_params["id"]]
    if not found:
        raise FlowError(
            "1439",
            f"Flow spec {request.path_params['id']} is not found.",
            status=st.HTTP_404_NOT_FOUND,
            title="Resource not found",
            resource_type="flowSpecs",
        )
    return JSONResponse({"items": found})
