"""The admin API under `/_emulator` (outside Adobe's paths; loopback callers only).

Always on: `POST /_emulator/clients`, `GET /_emulator/state` (credentials masked).
With faults enabled: `POST|GET|DELETE /_emulator/faults`, `POST /_emulator/runs/fail`,
`POST|DELETE /_emulator/landings/withhold`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.context import app_context
from emulator.dataflow import FAIL_RUN
from emulator.errors import EmulatorError, ProblemError, parse_json
from emulator.faults import FaultSpec
from emulator.flowservice.common import masked
from emulator.streaming import WITHHELD

__all__ = ["routes"]


class _ClientIn(BaseModel):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class _FailRunIn(BaseModel):
    flowId: str
    org: str
    sandbox: str
    message: str = "Run failed (injected by /_emulator/runs/fail)."


class _WithholdIn(BaseModel):
    org: str
    sandbox: str
    datasetId: str | None = None


def _admin_error(message: str, status: int = 400) -> ProblemError:
    return ProblemError("ADMIN", message, status=status)


def _loopback(request: Request) -> None:
    host = request.client.host if request.client else ""
    try:
        ok = host == "testclient" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise _admin_error("The admin API answers loopback callers only.", st.HTTP_403_FORBIDDEN)


def _faults_on(request: Request) -> None:
    if not app_context(request).config.faults:
        raise _admin_error(
            "Fault injection is off; start the emulator with faults enabled.", st.HTTP_404_NOT_FOUND
        )


async def _model(request: Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(parse_json(await request.body()))
    except ValidationError as exc:
        raise _admin_error(f"Invalid body: {exc.errors(include_url=False)}") from None
    except EmulatorError as exc:
        raise _admin_error(exc.message) from None


async def add_client(request: Request) -> JSONResponse:
    """POST /_emulator/clients `{client_id, client_secret}` -> 201."""
    _loopback(request)
    body: _ClientIn = await _model(request, _ClientIn)
    with app_context(request).store.tx() as tx:
        tx.put_client(body.client_id, body.client_secret)
    return JSONResponse({"client_id": body.client_id}, status_code=st.HTTP_201_CREATED)


async def add_fault(request: Request) -> JSONResponse:
    """POST /_emulator/faults -> 201 `{id}`."""
    _loopback(request)
    _faults_on(request)
    spec: FaultSpec = await _model(request, FaultSpec)
    with app_context(request).store.tx() as tx:
        fid = tx.add_fault(spec.model_dump(), spec.times)
    return JSONResponse({"id": fid}, status_code=st.HTTP_201_CREATED)


async def list_faults(request: Request) -> JSONResponse:
    """GET /_emulator/faults: faults still armed."""
    _loopback(request)
    _faults_on(request)
    with app_context(request).store.tx() as tx:
        armed = tx.faults()
    return JSONResponse([{"id": fid, **spec, "remaining": left} for fid, spec, left in armed])


async def clear_faults(request: Request) -> Response:
    """DELETE /_emulator/faults: disarm all."""
    _loopback(request)
    _faults_on(request)
    with app_context(request).store.tx() as tx:
        tx.clear_faults()
    return Response(status_code=st.HTTP_204_NO_CONTENT)


async def fail_run(request: Request) -> JSONResponse:
    """POST /_emulator/runs/fail `{flowId, org, sandbox, message}`: the flow's next run fails."""
    _loopback(request)
    _faults_on(request)
    body: _FailRunIn = await _model(request, _FailRunIn)
    with app_context(request).store.tx() as tx:
        tx.put(FAIL_RUN, (body.org, body.sandbox), body.flowId, {"message": body.message})
    return JSONResponse({"flowId": body.flowId}, status_code=st.HTTP_201_CREATED)


async def withhold(request: Request) -> JSONResponse:
    """POST /_emulator/landings/withhold `{org, sandbox, datasetId|null}`: hold landings back."""
    _loopback(request)
    _faults_on(request)
    body: _WithholdIn = await _model(request, _WithholdIn)
    key = body.datasetId or "*"
    with app_context(request).store.tx() as tx:
        tx.put(WITHHELD, (body.org, body.sandbox), key, {"datasetId": body.datasetId})
    return JSONResponse({"datasetId": body.datasetId}, status_code=st.HTTP_201_CREATED)


async def release(request: Request) -> Response:
    """DELETE /_emulator/landings/withhold: release every held landing."""
    _loopback(request)
    _faults_on(request)
    with app_context(request).store.tx() as tx:
        for kind, org, sandbox, rid, _ in tx.dump():
            if kind == WITHHELD:
                tx.delete(WITHHELD, (org, sandbox), rid)
    return Response(status_code=st.HTTP_204_NO_CONTENT)


async def state(request: Request) -> JSONResponse:
    """GET /_emulator/state: every resource and pending item, credentials masked."""
    _loopback(request)
    with app_context(request).store.tx() as tx:
        resources = tx.dump()
        pending = tx.all_pending()
        clients = tx.client_ids()
    out: dict[str, Any] = {"clients": clients, "resources": {}, "pending": []}
    for kind, org, sandbox, rid, body in resources:
        key = f"{org}/{sandbox}" if org or sandbox else "-"
        out["resources"].setdefault(key, {}).setdefault(kind, {})[rid] = masked(body)
    for work in pending:
        payload = dict(work.payload)
        out["pending"].append(
            {
                "id": work.id,
                "kind": work.kind,
                "dueMs": work.due_ms,
                "org": work.scope[0],
                "sandbox": work.scope[1],
                "payload": payload,
            }
        )
    return JSONResponse(out)


routes: list[BaseRoute] = [
    Route("/clients", add_client, methods=["POST"]),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", list_faults, methods=["GET"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/runs/fail", fail_run, methods=["POST"]),
    Route("/landings/withhold", withhold, methods=["POST"]),
    Route("/landings/withhold", release, methods=["DELETE"]),
    Route("/state", state, methods=["GET"]),
]
