"""Fault injection as ASGI middleware (only installed when faults are enabled).

A fault matches a method (or any) and a regex on the URL path, and fires `times` times:
- `latency_ms`: wait before handling;
- `drop: "before"`: close the connection without handling the request;
- `status` (+ `retry_after`): answer that status without handling the request;
- `commit: true` + `status`: handle and commit the request, then answer `status` instead;
- `drop: "after"`: handle and commit, then close the connection without a response — the case
  that tests a client's create-if-absent.
Closing "without a response" aborts the TCP connection when the server is uvicorn (its send
callable exposes the transport); elsewhere the response is cut after its status line.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.store import Store

__all__ = ["FaultMiddleware", "FaultSpec"]


class FaultSpec(BaseModel):
    """One injected fault, as posted to `/_emulator/faults`."""

    method: str | None = None
    path: str = ".*"
    times: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    drop: Literal["before", "after"] | None = None
    commit: bool = False
    after: bool = False
    """Alias of `commit` (interfaces.md §1 names both)."""

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"path is not a valid regular expression: {exc}") from None
        return value


class FaultMiddleware:
    """Apply armed faults to matching requests (admin paths are never faulted)."""

    def __init__(self, app: ASGIApp, *, store: Store) -> None:
        self.app = app
        self.store = store

    def _take(self, method: str, path: str) -> FaultSpec | None:
        with self.store.tx() as tx:
            for fid, spec, _ in tx.faults():
                fault = FaultSpec.model_validate(spec)
                if fault.method and fault.method.upper() != method:
                    continue
                if not re.search(fault.path, path):
                    continue
                if tx.consume_fault(fid):
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the first armed fault that matches the request, if any."""
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        fault = self._take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.drop == "before":
            await _abort(send)
            return
        if fault.drop == "after" or ((fault.commit or fault.after) and fault.status is not None):
            await self.app(scope, receive, _discard)
            if fault.drop == "after":
                await _abort(send)
            else:
                await _answer(send, fault)
            return
        if fault.status is not None:
            await _answer(send, fault)
            return
        await self.app(scope, receive, send)


async def _discard(message: Message) -> None:
    """Swallow the real response of a request whose answer is replaced or dropped."""


async def _answer(send: Send, fault: FaultSpec) -> None:
    assert fault.status is not None
    body = json.dumps({"error_code": f"{fault.status}000", "message": "Injected fault"}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if fault.retry_after is not None:
        headers.append((b"retry-after", str(fault.retry_after).encode()))
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _abort(send: Send) -> None:
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        # the connection is gone: tell uvicorn's cycle so it does not try to answer 500
        if hasattr(cycle, "disconnected"):
            cycle.disconnected = True
        return
    await send(
        {"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1000")]}
    )
