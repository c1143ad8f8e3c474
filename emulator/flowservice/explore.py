"""`GET /connections/{id}/explore` for Stripe (base64 sourceParams -> JSON schema) and SFTP
(`objectType=root|folder` lists, `objectType=file&object=<path>&fileType=delimited|json
[&preview=true][&columnDelimiter=;]` gives a file's columns or schema and first records).

The reading itself is the run engine's (`emulator.runner.explore_sftp`,
`stripe_resource_schema`); this module parses Adobe's query form and shapes the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from emulator.context import app_context, tenant
from emulator.errors import FlowError, not_found_flow
from emulator.specs import SFTP, STRIPE

__all__ = ["explore", "test_connection"]


def _source_params(raw: str | None) -> dict[str, Any]:
    if not raw:
        raise FlowError("1400", "Query parameter sourceParams (base64 JSON) is required.")
    try:
        decoded = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False))
    except (binascii.Error, ValueError):
        raise FlowError("1400", "sourceParams must be base64 of a JSON object.") from None
    if not isinstance(decoded, dict):
        raise FlowError("1400", "sourceParams must be base64 of a JSON object.")
    return decoded


async def explore(request: Request) -> JSONResponse:
    """Explore a base connection's source: Stripe resources or SFTP folders."""
    from emulator import runner  # the engine EMU-RUNNER provides

    t = tenant(request)
    ctx = app_context(request)
    rid = request.path_params["id"]
    with ctx.store.tx() as tx:
        base = tx.get("connections", t.scope, rid)
    if base is None:
        raise not_found_flow("connections", rid)
    q = request.query_params
    object_type = q.get("objectType", "").lower()
    spec = base["connectionSpec"]["id"]
    try:
        if spec == STRIPE:
            if object_type != "rest":
                raise FlowError("1400", "Stripe connections are explored with objectType=rest.")
            path = _source_params(q.get("sourceParams")).get("resourcePath")
            if not isinstance(path, str):
                raise FlowError("1400", "sourceParams must carry a resourcePath.")
            schema = await run_in_threadpool(
                runner.stripe_resource_schema, ctx.config.stripe_fixtures, path
            )
            return JSONResponse({"format": "hierarchical", "schema": schema, "data": []})
        if spec == SFTP and object_type == "file":
            if not q.get("object"):
                raise FlowError("1400", "objectType=file needs object=<file path>.")
            inspected = await run_in_threadpool(
                partial(
                    runner.inspect_sftp_file,
                    base,
                    q["object"],
                    ctx.config.known_hosts,
                    file_type=q.get("fileType", "delimited"),
                    column_delimiter=q.get("columnDelimiter", ","),
                    compression=q.get("compressionType"),
                    encoding=q.get("encoding", "UTF-8"),
                    preview=q.get("preview", "false").lower() == "true",
                )
            )
            return JSONResponse(inspected)
        if spec == SFTP:
            if object_type not in ("root", "folder"):
                raise FlowError(
                    "1400", "SFTP connections are explored with objectType=root|folder|file."
                )
            path = "/" if object_type == "root" else q.get("object", "/")
            items = await run_in_threadpool(runner.explore_sftp, base, path, ctx.config.known_hosts)
            return JSONResponse(items)
    except runner.RunnerError as exc:
        raise FlowError("1400", f"Explore failed: {exc}") from None
    raise FlowError("1400", f"Connection spec {spec} cannot be explored.")


async def test_connection(request: Request) -> JSONResponse:
    """GET /connections/{id}/test: `{"result": true}` for a stored connection."""
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        base = tx.get("connections", t.scope, request.path_params["id"])
    if base is None:
        raise not_found_flow("connections", request.path_params["id"])
    return JSONResponse({"result": True})
