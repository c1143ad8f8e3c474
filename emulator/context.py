"""Per-app and per-request context: the state store and config, and the caller's tenant."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from emulator.config import EmulatorConfig
from emulator.store import Scope, Store

__all__ = ["AppContext", "Tenant", "app_context", "tenant"]


@dataclass
class AppContext:
    """What every endpoint may use: the store and the start-up config."""

    store: Store
    config: EmulatorConfig


@dataclass(frozen=True)
class Tenant:
    """The caller as the gateway established it."""

    org: str
    sandbox: str
    client_id: str

    @property
    def scope(self) -> Scope:
        """The (org, sandbox) that isolates resources."""
        return (self.org, self.sandbox)


def app_context(request: Request) -> AppContext:
    """The AppContext of the app serving `request`."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def tenant(request: Request) -> Tenant:
    """The tenant the gateway middleware attached to `request`."""
    found: Tenant = request.scope["state"]["tenant"]
    return found
