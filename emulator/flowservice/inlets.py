"""Streaming inlets: 64-hex ids that route DCS messages to flows, assigned by flow spec."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from emulator.context import Tenant
from emulator.ids import hex_id
from emulator.store import Tx

__all__ = ["INLETS", "inlet_url", "new_inlet"]

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
