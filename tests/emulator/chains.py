"""Helpers that build Platform resources through the HTTP API (TestClient or httpx.Client).

Payloads follow the seeds (Stripe, Capillary, Customer.io tutorials), made valid JSON.
"""

from __future__ import annotations

from typing import Any, Protocol

FS = "/data/foundation/flowservice"
CATALOG = "/data/foundation/catalog"
SCHEMAS = "/data/foundation/schemaregistry"
CONVERSION = "/data/foundation/conversion"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"

DATA_LAKE = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
STRIPE = "cc2c31d6-7b8c-4581-b49f-5c8698aa3ab3"
CAPILLARY = "6360f136-5980-4111-8bdf-15d29eab3b5a"
CUSTOMER_IO = "96479064-7b8a-4d69-b9ed-21c5683837ea"
HTTP_API = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
SFTP = "b7bf2577-4520-42c9-bae9-cad01560f7bc"
REST_FLOW = "6499120c-0b15-42dc-936e-847ea3c24d72"
CLOUD_FLOW = "9753525b-82c7-4dce-8a9b-5ccfce2b9876"
STREAMING_FLOW = "e77fde5a-22a8-11ed-861d-0242ac120002"
HTTP_XDM_FLOW = "d8a6f005-7eaf-4153-983e-e8574508b877"
HTTP_MAPPING_FLOW = "c1a19761-d2c7-4702-b9fa-fe91f0613e81"
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

# Capillary's loyalty profile record from its tutorial (seed 003).
CAPILLARY_PROFILE = {
    "identityMap": {
        "email": [
            {"authenticatedState": "ambiguous", "id": "john.doe@capillarytech.com", "primary": True}
        ]
    },
    "loyalty": {
        "tier": "gold",
        "points": 1250,
        "lifetimePoints": 122,
        "expiredPoints": 12,
        "pointsRedeemed": 500,
        "program": "loyalty program name",
        "status": "active",
    },
}


class Http(Protocol):
    """What both TestClient and httpx.Client offer."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


def call(
    http: Http, method: str, path: str, headers: dict[str, str], expect: int, **kwargs: Any
) -> Any:
    """Send one request, assert its status, return the decoded body (None when empty)."""
    response = http.request(method, path, headers=headers, **kwargs)
    assert response.status_code == expect, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def create_schema(
    http: Http,
    headers: dict[str, str],
    title: str,
    *,
    cls: str = PROFILE_CLASS,
    union: bool = True,
    properties: dict[str, Any] | None = None,
    identity: str | None = "/personalEmail/address",
) -> dict[str, Any]:
    """A tenant schema (optionally union-tagged with a primary Email identity descriptor)."""
    body: dict[str, Any] = {
        "title": title,
        "description": title,
        "type": "object",
        "allOf": [{"$ref": cls}],
    }
    if properties is not None:
        body["properties"] = properties
    if union:
        body["meta:immutableTags"] = ["union"]
    schema = call(http, "POST", f"{SCHEMAS}/tenant/schemas", headers, 201, json=body)
    if identity:
        call(
            http,
            "POST",
            f"{SCHEMAS}/tenant/descriptors",
            headers,
            201,
            json={
                "@type": "xdm:descriptorIdentity",
                "xdm:sourceSchema": schema["$id"],
                "xdm:sourceVersion": 1,
                "xdm:sourceProperty": identity,
                "xdm:namespace": "Email",
                "xdm:property": "xdm:code",
                "xdm:isPrimary": True,
            },
        )
    return dict(schema)


def create_dataset(
    http: Http,
    headers: dict[str, str],
    name: str,
    schema_id: str,
    *,
    profile: bool = False,
    file_description: bool = True,
) -> str:
    """A dataset on a schema; returns its 24-hex id."""
    body: dict[str, Any] = {"name": name, "schemaRef": {"id": schema_id, "contentType": XED_FULL}}
    if file_description:
        body["fileDescription"] = {
            "persisted": True,
            "containerFormat": "parquet",
            "format": "parquet",
        }
    if profile:
        body["tags"] = {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
    ref = call(http, "POST", f"{CATALOG}/dataSets", headers, 201, json=body)
    return str(ref[0]).removeprefix("@/dataSets/")


def create_mapping(
    http: Http,
    headers: dict[str, str],
    schema_id: str,
    pairs: list[tuple[str, str]],
    *,
    new_format: bool = False,
    null_id: bool = True,
) -> str:
    """A mapping set from (source, destination) pairs; returns its 32-hex id.

    The old format carries `"id": null` as Adobe's examples do unless `null_id` is False.
    """
    if new_format:
        body: dict[str, Any] = {
            "outputSchema": {"schemaRef": {"id": schema_id, "contentType": XED_FULL}},
            "mappings": [
                {"sourceType": "ATTRIBUTE", "source": s, "destination": d} for s, d in pairs
            ],
        }
    else:
        body = {"version": 0, "xdmSchema": schema_id, "xdmVersion": "1.0"}
        if null_id:
            body["id"] = None
        body["mappings"] = [
            {"sourceAttribute": s, "destinationXdmPath": d, "identity": False, "version": 0}
            for s, d in pairs
        ]
    return str(call(http, "POST", f"{CONVERSION}/mappingSets", headers, 200, json=body)["id"])


def create_target(
    http: Http,
    headers: dict[str, str],
    dataset_id: str,
    schema_id: str,
    name: str = "Target",
    *,
    fmt: str | None = "parquet_xdm",
) -> str:
    """A data lake target connection (no data format when `fmt` is None)."""
    data: dict[str, Any] = {"schema": {"id": schema_id, "version": XED_FULL}}
    if fmt is not None:
        data = {"format": fmt, **data}
    body = {
        "name": name,
        "description": name,
        "connectionSpec": {"id": DATA_LAKE, "version": "1.0"},
        "data": data,
        "params": {"dataSetId": dataset_id},
    }
    return str(call(http, "POST", f"{FS}/targetConnections", headers, 201, json=body)["id"])


def _present(**fields: Any) -> dict[str, Any]:
    """The fields whose value is not None, in the order given (a request body)."""
    return {key: value for key, value in fields.items() if value is not None}


def create_connection(
    http: Http,
    headers: dict[str, str],
    spec: str,
    name: str,
    auth_spec: str,
    params: dict[str, Any],
    *,
    description: str | None = None,
) -> str:
    """A base connection on a connection spec; returns its id."""
    body = _present(
        name=name,
        description=description,
        connectionSpec={"id": spec, "version": "1.0"},
        auth={"specName": auth_spec, "params": params},
    )
    return str(call(http, "POST", f"{FS}/connections", headers, 201, json=body)["id"])


def http_api_base(
    http: Http,
    headers: dict[str, str],
    name: str,
    inlet_name: str,
    *,
    authentication_required: bool | None = None,
) -> str:
    """An HTTP API streaming base connection for XDM data; returns its id."""
    params: dict[str, Any] = {"dataType": "xdm", "name": inlet_name}
    if authentication_required is not None:
        params["authenticationRequired"] = authentication_required
    return create_connection(http, headers, HTTP_API, name, "Streaming Connection", params)


def stripe_base(
    http: Http,
    headers: dict[str, str],
    name: str,
    access_token: str,
    *,
    description: str | None = None,
) -> str:
    """A Stripe base connection (OAuth2 Refresh Code); returns its id."""
    return create_connection(
        http,
        headers,
        STRIPE,
        name,
        "OAuth2 Refresh Code",
        {"accessToken": access_token},
        description=description,
    )


def create_source(
    http: Http,
    headers: dict[str, str],
    spec: str,
    name: str,
    *,
    base: str | None = None,
    description: str | None = None,
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> str:
    """A source connection on a connection spec (optionally on a base); returns its id."""
    body = _present(
        name=name,
        description=description,
        baseConnectionId=base,
        connectionSpec={"id": spec, "version": "1.0"},
        data=data,
        params=params,
    )
    return str(call(http, "POST", f"{FS}/sourceConnections", headers, 201, json=body)["id"])


def stripe_source(
    http: Http,
    headers: dict[str, str],
    base: str,
    name: str,
    resource: str,
    *,
    description: str | None = None,
) -> str:
    """A Stripe source connection reading one resource path as JSON; returns its id."""
    return create_source(
        http,
        headers,
        STRIPE,
        name,
        base=base,
        description=description,
        data={"format": "json"},
        params={"resourcePath": resource},
    )


def flow_body(
    spec: str,
    name: str,
    source: str,
    target: str,
    *,
    mapping: str | None = None,
    description: str | None = None,
    schedule: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A flow creation body: one source, one target, an optional mapping step."""
    step = {"name": "Mapping", "params": {"mappingId": mapping, "mappingVersion": 0}}
    return _present(
        name=name,
        description=description,
        flowSpec={"id": spec, "version": "1.0"},
        sourceConnectionIds=[source],
        targetConnectionIds=[target],
        transformations=[step] if mapping is not None else None,
        scheduleParams=schedule,
        options=options or None,
    )


def create_flow(
    http: Http,
    headers: dict[str, str],
    spec: str,
    name: str,
    source: str,
    target: str,
    **kwargs: Any,
) -> str:
    """A flow from `flow_body` (same keyword arguments); returns its id."""
    body = flow_body(spec, name, source, target, **kwargs)
    return str(call(http, "POST", f"{FS}/flows", headers, 201, json=body)["id"])


def customer_io_source(http: Http, headers: dict[str, str], name: str = "Customer.io") -> str:
    """Customer.io's streaming source connection (no base connection) per its tutorial."""
    return str(
        call(
            http,
            "POST",
            f"{FS}/sourceConnections",
            headers,
            201,
            json={
                "name": f"Streaming Source Connection for {name}",
                "providerId": "521eee4d-8cbe-4906-bb48-fb6bd4450033",
                "description": "Streaming Source Connection for customer.io",
                "connectionSpec": {"id": CUSTOMER_IO, "version": "1.0"},
                "data": {"format": "json"},
            },
        )["id"]
    )


def customer_io_chain(
    http: Http,
    headers: dict[str, str],
    *,
    name: str = "Customer.io",
    schema_properties: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Customer.io per its tutorial: no base connection, source, target, mapping, flow."""
    schema = create_schema(http, headers, f"{name} schema", properties=schema_properties)
    dataset = create_dataset(http, headers, f"{name} dataset", schema["$id"], profile=True)
    source = customer_io_source(http, headers, name)
    target = create_target(http, headers, dataset, schema["$id"], f"{name} target")
    mapping = create_mapping(
        http,
        headers,
        schema["$id"],
        [
            ("data.identifiers.email", "personalEmail.address"),
            ("event_id", "eventId"),
            ("metric", "metric"),
        ],
        new_format=True,
    )
    flow = call(
        http,
        "POST",
        f"{FS}/flows",
        headers,
        201,
        json={
            "name": f"Streaming Dataflow for {name}",
            "description": "Streaming Dataflow",
            "flowSpec": {"id": STREAMING_FLOW, "version": "1.0"},
            "sourceConnectionIds": [source],
            "targetConnectionIds": [target],
            "transformations": [
                {"name": "Mapping", "params": {"mappingId": mapping, "mappingVersion": 0}}
            ],
        },
    )
    return {
        "schema": schema["$id"],
        "dataset": dataset,
        "source": source,
        "target": target,
        "mapping": mapping,
        "flow": flow["id"],
    }
