"""Real-Time Customer Profile: a store of merged profiles fed by Profile-enabled datasets, and
`GET /data/core/ups/access/entities` to find one by identity.

Identities of a record come from its `identityMap` and from the identity descriptors of its
dataset's schema. A record whose identities touch an existing profile merges into it.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from starlette import status as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulator.context import app_context, tenant
from emulator.errors import CatalogError
from emulator.ids import hex_id, now_ms
from emulator.store import Scope, Tx

__all__ = ["PROFILES", "identities_of", "is_profile_enabled", "routes", "upsert"]

PROFILES = "profiles"
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
_SCHEMA_NAMES = {"_xdm.context.profile": PROFILE_CLASS}


def is_profile_enabled(dataset: dict[str, Any]) -> bool:
    """True if the dataset's `tags.unifiedProfile` says `enabled:true`."""
    tags = (dataset.get("tags") or {}).get("unifiedProfile") or []
    return any(str(t).replace(" ", "").lower() == "enabled:true" for t in tags)


def schema_of(tx: Tx, scope: Scope, dataset: dict[str, Any]) -> dict[str, Any] | None:
    """The tenant schema a dataset's schemaRef names, if stored."""
    schema_id = (dataset.get("schemaRef") or {}).get("id")
    for schema in tx.items("schemas", scope):
        if schema_id in (schema.get("$id"), schema.get("meta:altId")):
            return schema
    return None


def _at(record: dict[str, Any], pointer: str) -> Any:
    node: Any = record
    for part in [p for p in pointer.replace(".", "/").split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def identities_of(
    tx: Tx, scope: Scope, schema: dict[str, Any] | None, record: dict[str, Any]
) -> list[tuple[str, str]]:
    """(namespace lower-case, id) pairs of a record."""
    found: list[tuple[str, str]] = []
    identity_map = record.get("identityMap")
    if isinstance(identity_map, dict):
        for namespace, entries in identity_map.items():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("id") not in (None, ""):
                    found.append((str(namespace).lower(), str(entry["id"])))
    if schema is not None:
        for desc in tx.items("descriptors", scope):
            if desc.get("@type") == "xdm:descriptorIdentity" and desc.get(
                "xdm:sourceSchema"
            ) == schema.get("$id"):
                value = _at(record, str(desc.get("xdm:sourceProperty", "")))
                if value not in (None, "") and not isinstance(value, (dict, list)):
                    found.append((str(desc.get("xdm:namespace", "")).lower(), str(value)))
    return list(dict.fromkeys(found))


def _merge(into: dict[str, Any], record: dict[str, Any]) -> None:
    for key, value in record.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def upsert(tx: Tx, scope: Scope, dataset: dict[str, Any], records: list[dict[str, Any]]) -> int:
    """Merge records of a Profile-enabled dataset into profiles; returns how many were merged."""
    schema = schema_of(tx, scope, dataset)
    if schema is not None and schema.get("meta:class") == EVENT_CLASS:
        return 0
    merged = 0
    profiles = tx.items(PROFILES, scope)
    for record in records:
        ids = identities_of(tx, scope, schema, record)
        if not ids:
            continue
        target = next(
            (p for p in profiles if any([ns, i] in p["identities"] for ns, i in ids)), None
        )
        if target is None:
            target = {"entityId": hex_id(32), "identities": [], "sources": [], "entity": {}}
            profiles.append(target)
        for ns, i in ids:
            if [ns, i] not in target["identities"]:
                target["identities"].append([ns, i])
        if dataset["id"] not in target["sources"]:
            target["sources"].append(dataset["id"])
        _merge(target["entity"], record)
        target["lastModifiedAt"] = now_ms()
        tx.put(PROFILES, scope, target["entityId"], target)
        merged += 1
    return merged


async def get_entities(request: Request) -> JSONResponse:
    """Find one profile by `entityId` + `entityIdNS` (`schema.name=_xdm.context.profile`).

    A miss answers 404 (Adobe's GET miss behaviour is unconfirmed; documented in docs/emulator.md).
    """
    t = tenant(request)
    q = request.query_params
    schema_name = q.get("schema.name")
    if schema_name not in _SCHEMA_NAMES:
        raise CatalogError(
            f"schema.name must be one of {sorted(_SCHEMA_NAMES)}, got {schema_name!r}.",
            code="UPS-1001",
        )
    entity_id = q.get("entityId")
    namespace = q.get("entityIdNS")
    if not entity_id:
        raise CatalogError("entityId is required.", code="UPS-1002")
    with app_context(request).store.tx() as tx:
        profiles = tx.items(PROFILES, t.scope)
    for profile in profiles:
        if namespace:
            hit = [namespace.lower(), entity_id] in profile["identities"]
        else:
            hit = profile["entityId"] == entity_id or any(
                i == entity_id for _, i in profile["identities"]
            )
        if hit:
            fields = [f for f in q.get("fields", "").split(",") if f]
            entity = profile["entity"]
            if fields:
                entity = {k: v for k, v in entity.items() if k in {f.split(".")[0] for f in fields}}
            modified = dt.datetime.fromtimestamp(profile["lastModifiedAt"] / 1000, dt.UTC)
            return JSONResponse(
                {
                    profile["entityId"]: {
                        "entityId": profile["entityId"],
                        "sources": profile["sources"],
                        "tags": [],
                        "identityGraph": [f"{i}" for _, i in profile["identities"]],
                        "mergePolicy": {"id": "00000000-0000-0000-0000-000000000000"},
                        "entity": entity,
                        "lastModifiedAt": modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                }
            )
    raise CatalogError(
        f"No profile with identity {namespace}:{entity_id}.",
        status=st.HTTP_404_NOT_FOUND,
        code="UPS-1404",
    )


routes = [Route("/access/entities", get_entities, methods=["GET"])]
