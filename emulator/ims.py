"""IMS: `POST /ims/token/v3` issues expiring bearer tokens for registered OAuth clients."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulator.context import app_context
from emulator.errors import ImsError
from emulator.ids import now_ms

__all__ = ["routes"]


async def issue_token(request: Request) -> JSONResponse:
    """Answer a client_credentials grant with `{access_token, token_type, expires_in}` (seconds).

    Fields come from the form body or, as IMS also allows, the query string.
    """
    fields = {k: v[-1] for k, v in parse_qs(request.url.query).items()}
    body = await request.body()
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ImsError("invalid_request", "The form body is not valid UTF-8.") from None
        fields.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    grant = fields.get("grant_type")
    if not grant:
        raise ImsError("invalid_request", "Missing required parameter: grant_type")
    if grant != "client_credentials":
        raise ImsError("unsupported_grant_type", f"Grant type {grant!r} is not supported.")
    client_id = fields.get("client_id", "")
    secret = fields.get("client_secret", "")
    if not client_id:
        raise ImsError("invalid_request", "Missing required parameter: client_id")
    ctx = app_context(request)
    with ctx.store.tx() as tx:
        known = tx.client_secret(client_id)
        if known is None or not secrets.compare_digest(known, secret):
            raise ImsError(
                "invalid_client", "Invalid client credentials.", status=st.HTTP_401_UNAUTHORIZED
            )
        lifetime = ctx.config.token_lifetime_s
        token = "emu-" + secrets.token_urlsafe(32)
        tx.put_token(token, client_id, now_ms() + lifetime * 1000)
    return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": lifetime})


routes = [
    Route("/token/v3", issue_token, methods=["POST"]),
    Route("/token", issue_token, methods=["POST"]),
]
