"""The one table of places where Adobe's tutorials and its OpenAPI specs disagree on a request's
form, and where the emulator answers in the tutorials' form rather than the spec's. The emulator
accepts both request forms; `to_spec_form` / `response_to_spec_form` rewrite an exchange into the
spec's form so that it can be checked against the spec with the table applied.

docs/emulator.md shows this table (`markdown_table()`); a test keeps the two identical.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DEVIATIONS", "Deviation", "markdown_table", "response_to_spec_form", "to_spec_form"]


@dataclass(frozen=True)
class Deviation:
    """One request form the tutorials use and the spec does not allow."""

    key: str
    where: str
    spec_form: str
    tutorial_form: str
    source: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "action-op",
        "POST /flows/{id}/action",
        "`op=ENABLE` / `op=DISABLE` and a required `subOp`",
        "`op=enable` / `op=disable`, no `subOp` (any case accepted)",
        "update-destination-dataflows.md; spec `op` enum",
    ),
    Deviation(
        "patch-op-case",
        "PATCH Flow Service resources, Catalog datasets, Schema Registry schemas",
        "`op` in `ADD`, `REPLACE`, `REMOVE`",
        "`op` in `add`, `replace`, `remove` (RFC 6902)",
        "update-dataflows.md; spec `PatchInstruction`",
    ),
    Deviation(
        "patch-value-type",
        "PATCH Flow Service resources, Schema Registry schemas",
        "`value` is an object (Flow Service), a string (Schema Registry)",
        '`value` of any JSON type (a name as a string, `["union"]` as an array)',
        "update-dataflows.md, xdm/api/schemas.md; spec `PatchInstruction`, `patchSchema`",
    ),
    Deviation(
        "start-time-type",
        "flows `scheduleParams.startTime` (request and GET)",
        "integer (epoch seconds)",
        'string of digits, e.g. `"1710267858"`',
        "stripe.md, capillary.md, cloud-storage.md",
    ),
    Deviation(
        "interval-type",
        "flows `scheduleParams.interval` (request and GET)",
        'string, e.g. `"15"`',
        "integer, e.g. `15`",
        "stripe.md, capillary.md, sftp.md",
    ),
    Deviation(
        "mapping-version-type",
        "flows `transformations[].params.mappingVersion`",
        "string",
        'integer, e.g. `0` (the Capillary tutorial sends `"0"`)',
        "stripe.md, customerio-webhook.md",
    ),
    Deviation(
        "source-connection-data",
        "POST /sourceConnections",
        "`data` required",
        "no `data` (Capillary tutorial)",
        "loyalty/capillary.md",
    ),
    Deviation(
        "explore-object-type",
        "GET /connections/{id}/explore `objectType`",
        "`ROOT`, `FOLDER`, `FILE`, `TABLE`, `REST`",
        "lower case: `rest`, `root`, `folder`",
        "stripe.md, explore/cloud-storage.md",
    ),
    Deviation(
        "explore-structure-response",
        "GET /connections/{id}/explore, objectType rest or file (response)",
        "an array of items",
        "`{format, schema, data}` (format `hierarchical` or `flat`)",
        "stripe.md, explore/cloud-storage.md",
    ),
    Deviation(
        "connection-patch-body",
        "PATCH /connections/{id}",
        "one `PatchInstruction` object",
        "a JSON Patch array, as every other PATCH (the first operation is checked)",
        "update.md",
    ),
    Deviation(
        "mapping-validate-errors",
        "POST /mappingSets/validate (response)",
        "`errors` an array",
        "`errors: null` when the mapping is valid",
        "data-prep/api/mapping-set.md",
    ),
    Deviation(
        "connection-path-slash",
        "PATCH, DELETE /connections/{id}",
        "`/connections/{id}/` (trailing slash)",
        "`/connections/{id}`",
        "update.md, delete.md",
    ),
    Deviation(
        "mapping-preview-response",
        "POST /mappingSets/preview (response)",
        "an object",
        '`[{"data": {...}, "errors": null}]`, one per sample record (first one checked)',
        "data-prep/api/mapping-set.md",
    ),
    Deviation(
        "mapping-set-dates",
        "mapping set responses (POST, PUT, GET, list) `createdDate`, `modifiedDate`",
        "date-time string",
        "epoch milliseconds as integers",
        "mapping-set.md, stripe.md",
    ),
    Deviation(
        "mapping-set-null-id",
        "POST /mappingSets body",
        "`id` absent or a string",
        '`"id": null` (the legacy format\'s template)',
        "stripe.md, cloud-storage.md mapping examples",
    ),
    Deviation(
        "descriptor-source-version",
        "descriptors (POST, GET) `xdm:sourceVersion`",
        "string",
        "integer `1`",
        "xdm/api/descriptors.md, streaming-record-data.md",
    ),
    Deviation(
        "catalog-patch-body",
        "PATCH /dataSets/{id}",
        '`Content-Type: application/json`, a merge object (`{"tags": {...}}`)',
        "`Content-Type: application/json-patch+json`, a JSON Patch array on `/tags/...`",
        "catalog/datasets/enable-for-profile.md",
    ),
    Deviation(
        "dcs-sandbox-header",
        "POST /collection/{inletId}",
        "`x-sandbox-name` header required",
        "no headers on an unauthenticated inlet",
        "streaming/http.md, customerio-webhook.md",
    ),
    Deviation(
        "dcs-raw-body",
        "POST /collection/{inletId} body",
        "an XDM envelope `{header, body{xdmMeta, xdmEntity}}`",
        "the source's raw JSON (webhook sources, HTTP API `dataType: raw`)",
        "customerio-webhook.md, streaming/http.md",
    ),
    Deviation(
        "dcs-received-time",
        "POST /collection/{inletId} (response) `receivedTimeMs`",
        "`int32` (cannot hold epoch ms; checked in seconds)",
        "epoch milliseconds",
        "streaming-record-data.md",
    ),
)


def markdown_table() -> str:
    """The table as Markdown, as docs/emulator.md carries it."""
    lines = [
        "| key | where | spec form | tutorial form (also accepted) | seen in |",
        "|---|---|---|---|---|",
    ]
    for d in DEVIATIONS:
        lines.append(f"| {d.key} | {d.where} | {d.spec_form} | {d.tutorial_form} | {d.source} |")
    return "\n".join(lines) + "\n"


def _patch_ops(body: Any, *, value_as: str) -> Any:
    if not isinstance(body, list):
        return body
    out = []
    for op in body:
        if isinstance(op, dict) and isinstance(op.get("op"), str):
            op = {**op, "op": op["op"].upper()}  # patch-op-case
            if value_as == "object" and "value" in op and not isinstance(op["value"], dict):
                op["value"] = {"value": op["value"]}  # patch-value-type
            if value_as == "string" and "value" in op and not isinstance(op["value"], str):
                op["value"] = json.dumps(op["value"])  # patch-value-type
        out.append(op)
    return out


def _flow_to_spec(flow: Any) -> None:
    if not isinstance(flow, dict):
        return
    schedule = flow.get("scheduleParams")
    if isinstance(schedule, dict):
        if isinstance(schedule.get("startTime"), str) and schedule["startTime"].isdigit():
            schedule["startTime"] = int(schedule["startTime"])  # start-time-type
        if isinstance(schedule.get("interval"), int):
            schedule["interval"] = str(schedule["interval"])  # interval-type
    for tr in flow.get("transformations") or []:
        params = tr.get("params") if isinstance(tr, dict) else None
        if isinstance(params, dict) and isinstance(params.get("mappingVersion"), int):
            params["mappingVersion"] = str(params["mappingVersion"])  # mapping-version-type


def to_spec_form(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any
) -> tuple[str, list[tuple[str, str]], dict[str, str], Any]:
    """Rewrite a tutorial-form request into the spec's form (each rule is a DEVIATIONS row).

    Args:
        method: HTTP method.
        path: URL path (Adobe's, e.g. `/data/foundation/flowservice/flows/<id>/action`).
        query: query parameters in order.
        headers: request headers (lower-case names).
        body: the decoded JSON body (or None).

    Returns:
        (path, query, headers, body) in the spec's form.
    """
    query = list(query)
    headers = dict(headers)
    body = copy.deepcopy(body)
    method = method.upper()
    flowservice = "/flowservice/" in path
    if method == "POST" and flowservice and path.endswith("/action"):
        query = [(k, v.upper() if k == "op" else v) for k, v in query]  # action-op
        if not any(k == "subOp" for k, _ in query):
            query.append(("subOp", "APPLY"))
    if method == "PATCH" and flowservice:
        body = _patch_ops(body, value_as="object")
    if method == "PATCH" and "/schemaregistry/" in path:
        body = _patch_ops(body, value_as="string")
    if method in ("PATCH", "DELETE") and re.fullmatch(r".*/flowservice/connections/[^/]+", path):
        path = path + "/"  # connection-path-slash
    base_connection = re.fullmatch(r".*/flowservice/connections/[^/]+/", path)
    if method == "PATCH" and base_connection and isinstance(body, list) and body:
        body = body[0]  # connection-patch-body
    if method == "PATCH" and "/catalog/dataSets/" in path and isinstance(body, list):
        headers["content-type"] = "application/json"  # catalog-patch-body
        merged: dict[str, Any] = {}
        for op in body:
            if isinstance(op, dict) and str(op.get("op", "")).lower() in ("add", "replace"):
                node = merged
                keys = [k for k in str(op.get("path", "")).split("/") if k]
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                if keys:
                    node[keys[-1]] = op.get("value")
        body = merged
    if method == "POST" and path.startswith("/collection/"):
        headers.setdefault("x-sandbox-name", "prod")  # dcs-sandbox-header
        if isinstance(body, dict) and not ("header" in body and "body" in body):
            ref = {"id": "raw", "contentType": "application/json"}  # dcs-raw-body
            body = {
                "header": {
                    "schemaRef": ref,
                    "imsOrgId": "raw",
                    "datasetId": "raw",
                    "flowId": "raw",
                },
                "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": body},
            }
    if method == "POST" and path.endswith("/flowservice/flows"):
        _flow_to_spec(body)
    if (
        method == "POST"
        and path.endswith("/conversion/mappingSets")
        and isinstance(body, dict)
        and body.get("id", "") is None
    ):
        del body["id"]  # mapping-set-null-id
    if (
        method == "POST"
        and path.endswith("/flowservice/sourceConnections")
        and isinstance(body, dict)
        and "data" not in body
    ):
        body["data"] = {}  # source-connection-data
    version = body.get("xdm:sourceVersion") if isinstance(body, dict) else None
    if method == "POST" and path.endswith("/tenant/descriptors") and isinstance(version, int):
        body["xdm:sourceVersion"] = str(version)  # descriptor-source-version
    if method == "GET" and path.endswith("/explore"):
        query = [
            (k, v.upper() if k == "objectType" else v) for k, v in query
        ]  # explore-object-type
    return path, query, headers, body


def response_to_spec_form(method: str, path: str, query: list[tuple[str, str]], body: Any) -> Any:
    """Rewrite a response the emulator gives in the tutorials' form into the spec's form."""
    body = copy.deepcopy(body)
    method = method.upper()
    if "/flowservice/flows" in path and isinstance(body, dict):
        for item in body.get("items") or []:
            _flow_to_spec(item)
    if (
        method == "GET"
        and path.endswith("/explore")
        and isinstance(body, dict)
        and any(k == "objectType" and v.lower() in ("rest", "file") for k, v in query)
    ):
        body = [body]  # explore-structure-response
    if "/conversion/mappingSets" in path and isinstance(body, dict):
        for mapping_set in [body, *(body.get("data") or [])]:
            for key in ("createdDate", "modifiedDate"):
                if isinstance(mapping_set, dict) and isinstance(mapping_set.get(key), int):
                    stamp = dt.datetime.fromtimestamp(mapping_set[key] / 1000, dt.UTC)
                    mapping_set[key] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # mapping-set-dates
    if path.endswith("/mappingSets/validate") and isinstance(body, dict):
        for result in body.get("validationResponse") or []:
            if isinstance(result, dict) and result.get("errors") is None:
                result["errors"] = []  # mapping-validate-errors
    if path.endswith("/mappingSets/preview") and isinstance(body, list):
        first = body[0] if body and isinstance(body[0], dict) else {}
        body = {"data": first.get("data") or {}}  # mapping-preview-response (first entry)
        if first.get("errors"):
            body["errors"] = first["errors"]
    received = body.get("receivedTimeMs") if isinstance(body, dict) else None
    if method == "POST" and path.startswith("/collection/") and isinstance(received, int):
        body["receivedTimeMs"] = received // 1000  # dcs-received-time
    if "/tenant/descriptors" in path and isinstance(body, dict):
        groups = [v for v in body.values() if isinstance(v, list)]
        for descriptor in [body, *(d for group in groups for d in group)]:
            version = descriptor.get("xdm:sourceVersion") if isinstance(descriptor, dict) else None
            if isinstance(version, int):
                descriptor["xdm:sourceVersion"] = str(version)  # descriptor-source-version
    return body
