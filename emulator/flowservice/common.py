"""Shared by the Flow Service resources: common item fields, etags, If-Match, masking."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from starlette import status as st
from starlette.requests import Request

from emulator.context import Tenant
from emulator.errors import FlowError, parse_json
from emulator.ids import etag, now_ms

__all__ = [
    "MASK",
    "PUBLIC_AUTH_PARAMS",
    "check_if_match",
    "masked",
    "new_item",
    "read_body",
    "sandbox_id",
    "touch",
]

MASK = "******"
PUBLIC_AUTH_PARAMS = frozenset(
    {
        "host",
        "port",
        "userName",
        "username",
        "folderPath",
        "maxConcurrentConnections",
        "inletUrl",
        "inletId",
        "dataType",
        "sourceId",
        "name",
        "authenticationRequired",
    }
)
"""auth.params that are not credentials and are shown as stored; every other value is masked."""


def sandbox_id(tenant: Tenant) -> str:
    """A stable sandbox id for (org, sandbox)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aep-emulator:{tenant.org}:{tenant.sandbox}"))


def new_item(tenant: Tenant, rid: str, body: dict[str, Any]) -> dict[str, Any]:
    """A stored item: the request body plus the fields Flow Service adds on create."""
    now = now_ms()
    tag = etag()
    user = f"{tenant.client_id}@AdobeID"
    item = dict(body)
    item.update(
        {
            "id": rid,
            "createdAt": now,
            "updatedAt": now,
            "createdBy": user,
            "updatedBy": user,
            "createdClient": tenant.client_id,
            "updatedClient": tenant.client_id,
            "sandboxId": sandbox_id(tenant),
            "sandboxName": tenant.sandbox,
            "imsOrgId": tenant.org,
            "version": tag,
            "etag": tag,
        }
    )
    return item


def touch(item: dict[str, Any], tenant: Tenant) -> str:
    """Give `item` a new etag/version and update stamps; returns the new etag."""
    tag = etag()
    item["version"] = tag
    item["etag"] = tag
    item["updatedAt"] = now_ms()
    item["updatedBy"] = f"{tenant.client_id}@AdobeID"
    item["updatedClient"] = tenant.client_id
    return tag


def check_if_match(request: Request, item: dict[str, Any]) -> None:
    """Enforce optimistic concurrency on PATCH.

    Raises:
        FlowError: 1403-400 without If-Match, 1404-412 when it names an older version.
    """
    given = request.headers.get("if-match")
    if not given:
        raise FlowError("1403", "Header If-Match is missing. Provide the etag of the resource.")
    if given.strip().strip('"') != str(item["etag"]).strip('"'):
        raise FlowError(
            "1404",
            "Version not matching: the If-Match etag is not the current version of the resource.",
            status=st.HTTP_412_PRECONDITION_FAILED,
            title="Precondition Failed",
        )


def masked(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of `item` with credential values in auth.params masked."""
    auth = item.get("auth")
    if not isinstance(auth, dict) or not isinstance(auth.get("params"), dict):
        return item
    shown = copy.deepcopy(item)
    params = shown["auth"]["params"]
    for key, value in params.items():
        if key not in PUBLIC_AUTH_PARAMS and value not in (None, ""):
            params[key] = MASK
    return shown


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object body of a create request.

    Raises:
        FlowError: empty body (1405), malformed JSON or not an object (1406).
    """
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise FlowError("1406", "The request body must be a JSON object.")
    return body
