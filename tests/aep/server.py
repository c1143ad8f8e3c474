"""A small Platform stand-in for the client's tests: Starlette in uvicorn on a free loopback port.

It checks what AEP's gateway checks (the four headers, a token IMS issued) and can misbehave on
demand: answer 429 with Retry-After, revoke tokens (so the next call gets a 401), commit a
create and then answer 500 or drop the connection. It stores resources the way Flow Service
(`items`, `property=name==`, `_links.next`) and Catalog (ID-keyed objects, `limit`/`start`)
list them. It shares no code with `aep/` (it is the other side of the wire).
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

REQUIRED_HEADERS = ("authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name")


class DroppedConnection(Exception):
    """Raised after the response started, so uvicorn closes the connection mid-response."""


@dataclass
class Fault:
    """One planned misbehaviour for requests matching `method` and `path` (a regex)."""

    method: str | None
    path: str
    times: int = 1
    status: int | None = None
    retry_after: str | None = None
    commit: bool = False
    """Handle the request (store the resource) before answering `status` or dropping."""
    drop: bool = False
    body: dict[str, Any] | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class State:
    """Everything the server knows; tests read and change it directly."""

    clients: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    token_forms: list[dict[str, str]] = field(default_factory=list)
    expires_in: int = 86399
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times <= 0:
                    continue
                if fault.method not in (None, method):
                    continue
                if re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def requests_to(self, method: str, path_regex: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.search(path_regex, s.path)]


def _problem(status: int, code: str, title: str, rid: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": f"https://ns.adobe.com/aep/errors/{code}",
            "title": title,
            "status": status,
            "report": {"detailed-message": title, "request-id": rid},
        },
        status_code=status,
        headers={"x-request-id": rid},
    )


class _Gate:
    """ASGI middleware: record, check headers and token, inject faults."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        headers = {k.lower(): v for k, v in request.headers.items()}
        path = scope["path"]
        method = scope["method"]
        rid = headers.get("x-request-id") or f"req-{uuid.uuid4().hex[:12]}"
        with self.state.lock:
            self.state.seen.append(
                Seen(
                    method,
                    path,
                    scope.get("query_string", b"").decode(),
                    headers,
                    body,
                    time.time(),
                )
            )
        if path.startswith("/data/"):
            missing = [h for h in REQUIRED_HEADERS if not headers.get(h)]
            if missing:
                await JSONResponse(
                    {"error_code": "403010", "message": f"missing headers: {', '.join(missing)}"},
                    status_code=403 if "authorization" in missing else 400,
                    headers={"x-request-id": rid},
                )(scope, replay, send)
                return
            token = headers["authorization"].removeprefix("Bearer ")
            if token not in self.state.tokens:
                await JSONResponse(
                    {"error_code": "401013", "message": "Oauth token is not valid"},
                    status_code=401,
                    headers={"x-request-id": rid},
                )(scope, replay, send)
                return
        fault = self.state.take_fault(method, path)
        if fault is not None and not fault.commit:
            if fault.drop:
                await _drop(send)
                return
            extra = {"x-request-id": rid}
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            await JSONResponse(
                fault.body or {"error_code": f"{fault.status}050", "message": "injected"},
                status_code=fault.status or 500,
                headers=extra,
            )(scope, replay, send)
            return
        if fault is not None and fault.commit:
            # handle it for real, throw the answer away, then fail
            async def discard(message: dict[str, Any]) -> None:
                return None

            await self.app(scope, replay, discard)
            if fault.drop:
                await _drop(send)
                return
            await _problem(
                fault.status or 500, f"TEST-1000-{fault.status or 500}", "Internal error", rid
            )(scope, replay, send)
            return
        scope.setdefault("state", {})["request_id"] = rid

        async def with_rid(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, replay, with_rid)


async def _drop(send: Send) -> None:
    # uvicorn's send is a bound method of the request cycle, which holds the TCP transport:
    # aborting it closes the connection with no response at all
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        if hasattr(cycle, "disconnected"):
            cycle.disconnected = True
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
    )
    raise DroppedConnection("connection dropped on purpose by the test server")


def create_app(state: State) -> ASGIApp:
    """The test Platform over `state`."""

    async def token(request: Request) -> Response:
        # parsed by hand: Starlette's request.form() needs python-multipart
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        with state.lock:
            state.token_requests += 1
            state.token_forms.append({k: str(v) for k, v in form.items()})
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if state.clients.get(str(form.get("client_id"))) != form.get("client_secret"):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = f"tok-{secrets.token_hex(8)}"
        with state.lock:
            state.tokens.add(issued)
        return JSONResponse(
            {"access_token": issued, "token_type": "bearer", "expires_in": state.expires_in}
        )

    def store(kind: str) -> dict[str, dict[str, Any]]:
        return state.resources.setdefault(kind, {})

    async def fs_create(request: Request) -> Response:
        kind = request.path_params["kind"]
        body = await request.json()
        rid = uuid.uuid4().hex
        item_id = str(uuid.uuid4())
        etag = f'"{uuid.uuid4().hex[:8]}"'
        with state.lock:
            store(kind)[item_id] = {**body, "id": item_id, "etag": etag, "version": etag}
        return JSONResponse({"id": item_id, "etag": etag}, status_code=201, headers={"x-rid": rid})

    async def fs_list(request: Request) -> Response:
        kind = request.path_params["kind"]
        items = list(store(kind).values())
        for prop in request.query_params.getlist("property"):
            key, _, value = prop.partition("==")
            items = [i for i in items if str(i.get(key)) == value.strip('"')]
        start = int(request.query_params.get("continuationToken", "0"))
        page = items[start : start + state.page_size]
        out: dict[str, Any] = {"items": page}
        if start + state.page_size < len(items):
            qs = "&".join(f"property={p}" for p in request.query_params.getlist("property"))
            out["_links"] = {
                "next": {"href": f"/{kind}?{qs}&continuationToken={start + state.page_size}"}
            }
        return JSONResponse(out)

    async def fs_get(request: Request) -> Response:
        kind, item_id = request.path_params["kind"], request.path_params["id"]
        item = store(kind).get(item_id)
        if item is None:
            return _problem(404, "FLOW-1439-404", "Resource not found", request.state.request_id)
        return JSONResponse({"items": [item]})

    async def ds_create(request: Request) -> Response:
        body = await request.json()
        ds_id = secrets.token_hex(12)
        with state.lock:
            store("dataSets")[ds_id] = body
        return JSONResponse([f"@/dataSets/{ds_id}"], status_code=201)

    async def ds_list(request: Request) -> Response:
        items = store("dataSets")
        limit = int(request.query_params.get("limit", "20"))
        if limit > 100 or limit < 1:
            return _problem(400, "CAT-1001-400", "limit must be 1..100", request.state.request_id)
        start = int(request.query_params.get("start", "0"))
        name = request.query_params.get("name")
        matched = [(k, v) for k, v in items.items() if name is None or v.get("name") == name]
        return JSONResponse(dict(matched[start : start + min(limit, state.page_size)]))

    async def add_client(request: Request) -> Response:
        body = await request.json()
        with state.lock:
            state.clients[str(body["client_id"])] = str(body["client_secret"])
        return JSONResponse({"client_id": body["client_id"]}, status_code=201)

    async def echo(request: Request) -> Response:
        return JSONResponse({"ok": True, "body": (await request.body()).decode() or None})

    routes = [
        Route("/ims/token/v3", token, methods=["POST"]),
        Route("/data/foundation/catalog/dataSets", ds_create, methods=["POST"]),
        Route("/data/foundation/catalog/dataSets", ds_list, methods=["GET"]),
        Route("/data/foundation/flowservice/{kind}", fs_create, methods=["POST"]),
        Route("/data/foundation/flowservice/{kind}", fs_list, methods=["GET"]),
        Route("/data/foundation/flowservice/{kind}/{id}", fs_get, methods=["GET"]),
        Route("/_emulator/clients", add_client, methods=["POST"]),
        Route("/data/echo", echo, methods=["GET", "POST", "PUT", "PATCH"]),
    ]
    return _Gate(Starlette(routes=routes), state)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestServer:
    """The app in uvicorn on a thread; `base_url` once started."""

    __test__ = False  # not a pytest class

    def __init__(self, state: State) -> None:
        self.state = state
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> TestServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
