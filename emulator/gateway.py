"""The API gateway's header checks on every Platform call, as ASGI middleware.

Order and bodies follow Adobe's troubleshooting guide (aep-api.md §1.3, §12.1-2): missing token
403 `403010`, invalid or expired token 401 `401013`, missing API key 403 `403000`, API key of
another client 403 `403003`, missing org 400 `400003`, missing sandbox the Flow Service problem
`FLOW-2105-400`, a body without a JSON Content-Type the gateway's 400 `BadRequestError`. Only
`/data/...` paths are gated; IMS, the streaming inlets and the admin API
are not.
"""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.context import Tenant
from emulator.errors import ContentTypeError, EmulatorError, FlowError, GatewayError, render_error
from emulator.ids import now_ms
from emulator.store import Store, Tx

__all__ = ["GATED_PREFIX", "GatewayMiddleware", "check_token", "check_token_in"]

GATED_PREFIX = "/data/"


def check_token(store: Store, authorization: str | None) -> str:
    """The client id of a valid bearer token (opens its own transaction).

    Raises:
        GatewayError: the header is missing (403010) or the token unknown or expired (401013).
    """
    with store.tx() as tx:
        return check_token_in(tx, authorization)


def check_token_in(tx: Tx, authorization: str | None) -> str:
    """`check_token` inside an open transaction."""
    if not authorization:
        raise GatewayError("403010", "Oauth token is missing.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GatewayError("401013", "Oauth token is not valid")
    found = tx.token(token.strip())
    if found is None or found[1] <= now_ms():
        raise GatewayError("401013", "Oauth token is not valid")
    return found[0]


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length", "0")
    return "chunked" in headers.get("transfer-encoding", "").lower() or (
        length.isdigit() and int(length) > 0
    )


class GatewayMiddleware:
    """Refuse Platform calls whose headers the real gateway would refuse; attach the tenant."""

    def __init__(self, app: ASGIApp, *, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the headers of `/data/...` requests, then hand over with the tenant attached."""
        if scope["type"] != "http" or not scope["path"].startswith(GATED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        state["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            # every Platform answer carries x-request-id, as Adobe's gateway adds one
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                if b"x-request-id" not in names:
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", []),
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
            await send(message)

        try:
            tenant = self._check(headers)
        except EmulatorError as exc:
            response = render_error(Request(scope), exc)
            await response(scope, receive, send_with_id)
            return
        state["tenant"] = tenant
        await self.app(scope, receive, send_with_id)

    def _check(self, headers: Headers) -> Tenant:
        client_id = check_token(self.store, headers.get("authorization"))
        api_key = headers.get("x-api-key")
        if not api_key:
            raise GatewayError("403000", "Api Key is required")
        if api_key != client_id:
            raise GatewayError("403003", "Api Key is invalid")
        org = headers.get("x-gw-ims-org-id")
        if not org:
            raise GatewayError("400003", "Missing header")
        sandbox = headers.get("x-sandbox-name")
        if not sandbox:
            raise FlowError(
                "2105",
                "Header x-sandbox-name is missing. Provide the name of the sandbox.",
                title="Bad Request",
            )
        if _has_body(headers) and "json" not in headers.get("content-type", "").lower():
            raise ContentTypeError()
        return Tenant(org=org, sandbox=sandbox, client_id=client_id)
