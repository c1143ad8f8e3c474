"""Streaming inlets: 64-hex ids that route DCS messages to flows, assigned by flow spec."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from emulator.context import Tenant
from emulator.ids import hex_id
from emulator.store import Tx

__all__ = ["INLETS", "inlet_url", "new_inlet", "served"]

INLETS = "inlets"


def new_inlet(tx: Tx, t: Tenant, *, base_connection_id: str | None = None, auth: Any = None) -> str:
    """Create an inlet in the tenant's scope and return its id."""
    inlet_id = hex_id(64)
    params = auth.get("params", {}) if isinstance(auth, dict) else {}
    tx.put(
        INLETS,
        t.scope,
        inlet_id,
        {
            "inletId": inlet_id,
            "baseConnectionId": base_connection_id,
            "flowIds": [],
            "authenticationRequired": bool(params.get("authenticationRequired", False)),
            "dataType": params.get("dataType", "xdm"),
        },
    )
    return inlet_id


def inlet_url(request: Request, inlet_id: str) -> str:
    """The emulator's own URL of an inlet, as `options.inletUrl` / `auth.params.inletUrl` give it."""
    return f"{str(request.base_url).rstrip('/')}/collection/{inlet_id}"


def served(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """`item` with its inlet URLs on the base URL this request came in on.

    Stored URLs carry the address the emulator had when the flow was created; an embedded
    emulator reopened on the same state directory listens on another port, so the URL is
    rebuilt from the inlet id on every read.
    """
    options = item.get("options")
    if isinstance(options, dict) and isinstance(options.get("inletUrl"), str):
        inlet_id = options["inletUrl"].rstrip("/").rsplit("/", 1)[-1]
        item = {**item, "options": {**options, "inletUrl": inlet_url(request, inlet_id)}}
    auth = item.get("auth")
    params = auth.get("params") if isinstance(auth, dict) else None
    if isinstance(params, dict) and isinstance(params.get("inletId"), str):
        params = {**params, "inletUrl": inlet_url(request, params["inletId"])}
        item = {**item, "auth": {**auth, "params": params}}  # type: ignore[dict-item]
    return item
