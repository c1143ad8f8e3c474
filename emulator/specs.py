"""Seeded connection specs and flow specs (org-agnostic), with the facts the emulator enforces.

IDs come from aep-api.md §3 and the seeds. Capillary is seeded as its tutorial gives it
(connection spec 6360f136-…, usable with the batch REST flow spec 6499120c-…), and is also
accepted by GenericStreamingAEP, since the tutorial's IDs look copied from Adobe's template
(aep-api.md §3.4). Whether a flow gets a streaming inlet is decided by its flow spec only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CAPILLARY",
    "CLOUD_STORAGE_TO_AEP",
    "CONNECTION_SPECS",
    "CUSTOMER_IO",
    "DATA_LAKE",
    "FLOW_SPECS",
    "GENERIC_STREAMING",
    "HTTP_API",
    "HTTP_API_MAPPING",
    "HTTP_API_XDM",
    "REST_STORAGE_TO_AEP",
    "SFTP",
    "STRIPE",
    "FlowSpecFacts",
    "connection_spec_items",
    "flow_spec_items",
]

DATA_LAKE = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
STRIPE = "cc2c31d6-7b8c-4581-b49f-5c8698aa3ab3"
CAPILLARY = "6360f136-5980-4111-8bdf-15d29eab3b5a"
CUSTOMER_IO = "96479064-7b8a-4d69-b9ed-21c5683837ea"
HTTP_API = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
SFTP = "b7bf2577-4520-42c9-bae9-cad01560f7bc"

REST_STORAGE_TO_AEP = "6499120c-0b15-42dc-936e-847ea3c24d72"
CLOUD_STORAGE_TO_AEP = "9753525b-82c7-4dce-8a9b-5ccfce2b9876"
GENERIC_STREAMING = "e77fde5a-22a8-11ed-861d-0242ac120002"
HTTP_API_XDM = "d8a6f005-7eaf-4153-983e-e8574508b877"
HTTP_API_MAPPING = "c1a19761-d2c7-4702-b9fa-fe91f0613e81"

STREAMING_PROVIDER = "521eee4d-8cbe-4906-bb48-fb6bd4450033"
CLOUD_PROVIDER = "0ed90a81-07f4-4586-8190-b40eccef1c5a"
REST_PROVIDER = "0ed90a81-07f4-4586-8190-b40eccef1c5b"


@dataclass(frozen=True)
class FlowSpecFacts:
    """What the emulator enforces and does for flows of one flow spec."""

    id: str
    name: str
    kind: Literal["batch", "streaming"]
    sources: tuple[str, ...]
    mapping: Literal["required", "optional", "none"]


FLOW_SPECS: dict[str, FlowSpecFacts] = {
    f.id: f
    for f in (
        FlowSpecFacts(
            REST_STORAGE_TO_AEP, "RestStorageToAEP", "batch", (STRIPE, CAPILLARY), "optional"
        ),
        FlowSpecFacts(CLOUD_STORAGE_TO_AEP, "CloudStorageToAEP", "batch", (SFTP,), "optional"),
        FlowSpecFacts(
            GENERIC_STREAMING,
            "GenericStreamingAEP",
            "streaming",
            (CUSTOMER_IO, CAPILLARY),
            "optional",
        ),
        FlowSpecFacts(HTTP_API_XDM, "HttpApiXdmStreaming", "streaming", (HTTP_API,), "none"),
        FlowSpecFacts(
            HTTP_API_MAPPING, "HttpApiMappingStreaming", "streaming", (HTTP_API,), "required"
        ),
    )
}

_CONNECTION_SPECS: list[tuple[str, str, str, str, list[str]]] = [
    # id, name, providerId, category, auth spec names
    (DATA_LAKE, "Data Lake", "521eee4d-8cbe-4906-bb48-fb6bd4450033", "Data Lake", []),
    (STRIPE, "stripe", REST_PROVIDER, "Payments", ["OAuth2 Refresh Code"]),
    (
        CAPILLARY,
        "Capillary Streaming Events",
        REST_PROVIDER,
        "Loyalty",
        ["OAuth generic-rest-connector"],
    ),
    (CUSTOMER_IO, "Customer.io", STREAMING_PROVIDER, "Marketing Automation", []),
    (HTTP_API, "HTTP API", STREAMING_PROVIDER, "Streaming", ["Streaming Connection"]),
    (
        SFTP,
        "SFTP",
        CLOUD_PROVIDER,
        "Cloud Storage",
        ["Basic Authentication for sftp", "SSH PublicKey Authentication for sftp"],
    ),
]

CONNECTION_SPECS: dict[str, dict[str, Any]] = {}
for _id, _name, _provider, _category, _auth in _CONNECTION_SPECS:
    CONNECTION_SPECS[_id] = {
        "id": _id,
        "name": _name,
        "providerId": _provider,
        "version": "1.0",
        "authSpec": [{"name": a, "type": a, "spec": {"type": "object"}} for a in _auth],
        "attributes": {
            "category": _category,
            "connectorName": _name,
            "isSource": _id != DATA_LAKE,
        },
    }

_SCHEDULE_SPEC: dict[str, Any] = {
    "name": "PeriodicSchedule",
    "type": "Periodic",
    "spec": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "startTime": {"description": "epoch time", "type": "integer"},
            "frequency": {"type": "string", "enum": ["once", "minute", "hour", "day", "week"]},
            "interval": {"type": "integer"},
            "backfill": {"type": "boolean", "default": True},
        },
        "required": ["startTime", "frequency"],
    },
}


def connection_spec_items() -> list[dict[str, Any]]:
    """The seeded connection specs, as `GET /connectionSpecs` serves them."""
    return [dict(v) for v in CONNECTION_SPECS.values()]


def flow_spec_items() -> list[dict[str, Any]]:
    """The seeded flow specs, as `GET /flowSpecs` serves them."""
    items = []
    for facts in FLOW_SPECS.values():
        item: dict[str, Any] = {
            "id": facts.id,
            "name": facts.name,
            "providerId": STREAMING_PROVIDER if facts.kind == "streaming" else CLOUD_PROVIDER,
            "version": "1.0",
            "sourceConnectionSpecIds": list(facts.sources),
            "targetConnectionSpecIds": [DATA_LAKE],
            "attributes": {"isSourceFlow": True, "flacValidationSupported": False},
        }
        if facts.kind == "batch":
            item["scheduleSpec"] = _SCHEDULE_SPEC
        items.append(item)
    return items
