"""Data Access (`/data/foundation/export`): a batch's files, failed records, row errors, and a
dataset preview, so a client can read what landed and why records did not.

Layout of a batch (one data file, one row-errors file):
- `GET /batches/{id}/files` lists `{dataSetFileId: "<batch>-0", records, size, ...}`;
  `GET /files/<batch>-0` lists `part-00000.json`; `?path=part-00000.json` downloads JSON lines.
- `GET /batches/{id}/failed` lists `failed-00000.json`; with `?path=` downloads the failed
  records as JSON lines (`{"file", "line", "code", "message", "raw"}`).
- `GET /batches/{id}/meta?path=row_errors` lists `row_errors/part-00000.json`;
  `?path=row_errors/part-00000.json` downloads the row errors as JSON lines (same fields);
  `?path=row_errors_sample.json` gives up to five as a JSON array.
Numbers in listings are strings, as Adobe's spec types them.
"""

from __future__ import annotations

import json
from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.context import app_context, tenant
from emulator.errors import CatalogError
from emulator.lake import BATCH_DATA

__all__ = ["routes"]

_BASE = "/data/foundation/export"
_DATA_FILE = "part-00000.json"
_FAILED_FILE = "failed-00000.json"
_ROW_ERRORS_FILE = "row_errors/part-00000.json"


def _lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _listing(entries: list[tuple[str, int, str]]) -> dict[str, Any]:
    return {
        "data": [
            {"name": name, "length": str(length), "_links": {"self": {"href": href}}}
            for name, length, href in entries
        ],
        "_page": {"limit": 100, "count": len(entries)},
    }


def _batch_data(request: Request, bid: str) -> dict[str, Any]:
    t = tenant(request)
    with app_context(request).store.tx() as tx:
        data = tx.get(BATCH_DATA, t.scope, bid)
    if data is None:
        raise CatalogError(
            f"Batch {bid} is not found.", status=st.HTTP_404_NOT_FOUND, code="DAS-1404"
        )
    return data


async def batch_files(request: Request) -> JSONResponse:
    """GET /batches/{id}/files: the batch's dataset files."""
    bid = request.path_params["id"]
    data = _batch_data(request, bid)
    records = data["records"]
    files = []
    if records:
        files.append(
            {
                "dataSetFileId": f"{bid}-0",
                "dataSetViewId": data["datasetId"],
                "version": "1.0.0",
                "created": str(data["created"]),
                "updated": str(data["created"]),
                "records": str(len(records)),
                "size": str(len(_lines(records))),
                "isValid": True,
                "_links": {"self": {"href": f"{_BASE}/files/{bid}-0"}},
            }
        )
    return JSONResponse({"data": files, "_page": {"limit": 100, "count": len(files)}})


async def file_contents(request: Request) -> Response:
    """GET /files/{fileId}: its listing, or with `?path=` the records as JSON lines."""
    file_id = request.path_params["id"]
    bid, _, _ = file_id.rpartition("-")
    data = _batch_data(request, bid)
    body = _lines(data["records"])
    path = request.query_params.get("path")
    if path is None:
        return JSONResponse(
            _listing([(_DATA_FILE, len(body), f"{_BASE}/files/{file_id}?path={_DATA_FILE}")])
        )
    if path != _DATA_FILE:
        raise CatalogError(
            f"No file {path} in {file_id}.", status=st.HTTP_404_NOT_FOUND, code="DAS-1404"
        )
    return Response(body, media_type="application/json")


async def failed(request: Request) -> Response:
    """GET /batches/{id}/failed: list (or with `?path=`, download) the failed records."""
    bid = request.path_params["id"]
    data = _batch_data(request, bid)
    body = _lines(data["errors"])
    path = request.query_params.get("path")
    if path is None:
        entries = (
            [(_FAILED_FILE, len(body), f"{_BASE}/batches/{bid}/failed?path={_FAILED_FILE}")]
            if data["errors"]
            else []
        )
        return JSONResponse(_listing(entries))
    if path != _FAILED_FILE:
        raise CatalogError(
            f"No failed file {path} in batch {bid}.", status=st.HTTP_404_NOT_FOUND, code="DAS-1404"
        )
    return Response(body, media_type="application/json")


async def meta(request: Request) -> Response:
    """GET /batches/{id}/meta?path=row_errors|row_errors/<file>|row_errors_sample.json."""
    bid = request.path_params["id"]
    data = _batch_data(request, bid)
    path = request.query_params.get("path")
    errors = data["errors"]
    body = _lines(errors)
    if path is None:
        return JSONResponse(
            _listing(
                [
                    ("row_errors", 0, f"{_BASE}/batches/{bid}/meta?path=row_errors"),
                    (
                        "row_errors_sample.json",
                        0,
                        f"{_BASE}/batches/{bid}/meta?path=row_errors_sample.json",
                    ),
                ]
            )
        )
    if path.rstrip("/") == "row_errors":
        entries = (
            [(_ROW_ERRORS_FILE, len(body), f"{_BASE}/batches/{bid}/meta?path={_ROW_ERRORS_FILE}")]
            if errors
            else []
        )
        return JSONResponse(_listing(entries))
    if path == _ROW_ERRORS_FILE:
        return Response(body, media_type="application/json")
    if path == "row_errors_sample.json":
        return JSONResponse(errors[:5])
    raise CatalogError(
        f"No meta file {path} in batch {bid}.", status=st.HTTP_404_NOT_FOUND, code="DAS-1404"
    )


async def dataset_preview(request: Request) -> JSONResponse:
    """GET /datasets/{id}/preview: the first 100 records that landed in the dataset."""
    t = tenant(request)
    did = request.path_params["id"]
    with app_context(request).store.tx() as tx:
        if tx.get("dataSets", t.scope, did) is None:
            raise CatalogError(
                f"Dataset {did} is not found.", status=st.HTTP_404_NOT_FOUND, code="DAS-1404"
            )
        rows: list[dict[str, Any]] = []
        for batch in tx.items(BATCH_DATA, t.scope):
            if batch["datasetId"] == did:
                rows.extend(batch["records"])
    return JSONResponse({"data": rows[:100]})


routes: list[BaseRoute] = [
    Route("/batches/{id}/files", batch_files, methods=["GET"]),
    Route("/batches/{id}/failed", failed, methods=["GET"]),
    Route("/batches/{id}/meta", meta, methods=["GET"]),
    Route("/files/{id}", file_contents, methods=["GET"]),
    Route("/datasets/{id}/preview", dataset_preview, methods=["GET"]),
]
