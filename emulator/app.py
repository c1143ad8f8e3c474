"""`create_app`: the emulator's one Starlette application.

Each API is a route list under a `Mount` at Adobe's base path; the gateway's header checks and
fault injection are ASGI middleware; endpoints raise `emulator.errors` types that one handler
renders as Adobe's bodies. The lifespan starts and stops the background worker.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette import status as st
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount

from emulator import (
    admin,
    catalog,
    dataaccess,
    dataprep,
    flowservice,
    ims,
    profiles,
    schemas,
    streaming,
)
from emulator.config import EmulatorConfig
from emulator.context import AppContext
from emulator.errors import EmulatorError, render_error
from emulator.faults import FaultMiddleware
from emulator.gateway import GatewayMiddleware
from emulator.store import Store
from emulator.worker import Worker

__all__ = ["SERVICE_PREFIXES", "create_app"]

log = logging.getLogger("emulator")

SERVICE_PREFIXES = {
    "flowservice": "/data/foundation/flowservice",
    "catalog": "/data/foundation/catalog",
    "schemaregistry": "/data/foundation/schemaregistry",
    "conversion": "/data/foundation/conversion",
    "export": "/data/foundation/export",
    "ups": "/data/core/ups",
    "collection": "/collection",
    "ims": "/ims",
    "admin": "/_emulator",
}


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {
            "type": "https://ns.adobe.com/aep/errors/EMU-5000-500",
            "title": "Internal Server Error",
            "status": 500,
            "report": {"detailed-message": f"{type(exc).__name__}"},
        },
        status_code=st.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def create_app(config: EmulatorConfig, *, store: Store | None = None) -> Starlette:
    """Build the emulator app over the state directory's SQLite store.

    Args:
        config: start-up settings.
        store: an already-open store (default: open `config.state_dir`).

    Returns:
        The ASGI app; its lifespan runs the background worker when `config.worker` is set.
    """
    state = store or Store(config.state_dir)
    with state.tx() as tx:
        for client_id, secret in config.effective_clients().items():
            tx.put_client(client_id, secret)
    worker = Worker(state, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.worker:
            worker.start()
        try:
            yield
        finally:
            worker.stop()

    middleware = [Middleware(GatewayMiddleware, store=state)]
    if config.faults:
        middleware.insert(0, Middleware(FaultMiddleware, store=state))
    p = SERVICE_PREFIXES
    app = Starlette(
        routes=[
            Mount(p["ims"], routes=ims.routes),
            Mount(p["flowservice"], routes=flowservice.routes),
            Mount(p["catalog"], routes=catalog.routes),
            Mount(p["schemaregistry"], routes=schemas.routes),
            Mount(p["conversion"], routes=dataprep.routes),
            Mount(p["export"], routes=dataaccess.routes),
            Mount(p["ups"], routes=profiles.routes),
            Mount(p["collection"], routes=streaming.routes),
            Mount(p["admin"], routes=admin.routes),
        ],
        middleware=middleware,
        exception_handlers={
            EmulatorError: render_error,
            HTTPException: render_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.ctx = AppContext(store=state, config=config)
    app.state.worker = worker
    return app
