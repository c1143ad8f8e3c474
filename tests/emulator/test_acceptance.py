"""Acceptance: the seeds' creation chains over real HTTP, every exchange on Adobe's paths checked
against Adobe's OpenAPI spec (deviations table applied), plus the aep-api.md §12 shapes the specs
do not require; a profile sent to a streaming flow's inlet is found through the Profile API."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.deviations import markdown_table
from emulator.embed import EmbeddedEmulator
from tests.emulator.chains import (
    CAPILLARY,
    CAPILLARY_PROFILE,
    CATALOG,
    CLOUD_FLOW,
    CONVERSION,
    EVENT_CLASS,
    FS,
    REST_FLOW,
    SCHEMAS,
    SFTP,
    STREAMING_FLOW,
    XED_FULL,
    call,
    create_connection,
    create_dataset,
    create_flow,
    create_mapping,
    create_schema,
    create_source,
    create_target,
    customer_io_source,
    stripe_base,
    stripe_source,
)
from tests.emulator.conftest import platform_headers, token_for
from tests.emulator.openapi_support import RecordingTransport, SpecChecker

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
PROFILE_PROPS: dict[str, Any] = {
    "identityMap": {"type": "object"},
    "loyalty": {
        "type": "object",
        "properties": {
            "tier": {"type": "string"},
            "points": {"type": "integer"},
            "lifetimePoints": {"type": "integer"},
            "program": {"type": "string"},
            "status": {"type": "string"},
        },
    },
    "personalEmail": {"type": "object", "properties": {"address": {"type": "string"}}},
}
STRIPE_CHARGE_FIELDS = [
    "id",
    "refunded",
    "disputed",
    "payment_method_details.card.last4",
    "livemode",
    "status",
    "receipt_url",
    "balance_transaction",
    "outcome",
]


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[tuple[httpx.Client, RecordingTransport, dict[str, str], str]]:
    """An embedded emulator, a recording httpx client and authenticated headers."""
    transport = RecordingTransport()
    with (
        EmbeddedEmulator(tmp_path / "aep", landing_delay_s=0.0) as emu,
        httpx.Client(base_url=emu.base_url, transport=transport, timeout=30) as http,
    ):
        headers = {**platform_headers(token_for(http)), "Content-Type": "application/json"}
        yield http, transport, headers, emu.base_url


def _enable_profile(http: httpx.Client, headers: dict[str, str], dataset: str) -> None:
    call(
        http,
        "PATCH",
        f"{CATALOG}/dataSets/{dataset}",
        {**headers, "Content-Type": "application/json-patch+json"},
        200,
        json=[
            {"op": "add", "path": "/tags/unifiedProfile", "value": ["enabled:true"]},
            {"op": "add", "path": "/tags/unifiedIdentity", "value": ["enabled:true"]},
        ],
    )


def _stripe_chain(http: httpx.Client, headers: dict[str, str]) -> str:
    tenant = call(http, "GET", f"{SCHEMAS}/stats", {**headers, "Accept": "application/json"}, 200)[
        "tenantId"
    ]
    base = stripe_base(
        http,
        headers,
        "Stripe base connection",
        "sk_test_seed",
        description="Authenticated base connection for Stripe",
    )
    params = base64.b64encode(b'{"resourcePath":"charges"}').decode()
    assert params == "eyJyZXNvdXJjZVBhdGgiOiJjaGFyZ2VzIn0="
    call(
        http,
        "GET",
        f"{FS}/connections/{base}/explore?objectType=rest&object=json"
        f"&fileType=json&preview=false&sourceParams={params.replace('=', '%3D')}",
        headers,
        200,
    )
    source = stripe_source(
        http,
        headers,
        base,
        "Stripe Source Connection For Charges Data",
        "charges",
        description="Stripe source connection for charges data",
    )
    props = {f"_{tenant}": {"type": "object", "properties": {"charges_data": {"type": "object"}}}}
    schema = create_schema(
        http, headers, "Stripe charges", cls=EVENT_CLASS, properties=props, identity=None
    )
    dataset = create_dataset(http, headers, "Stripe charges", schema["$id"], file_description=False)
    target = create_target(
        http, headers, dataset, schema["$id"], "Stripe Target Connection For Charges Data"
    )
    mapping = create_mapping(
        http,
        headers,
        schema["$id"],
        [(f"data.{f}", f"_{tenant}.charges_data.{f}") for f in STRIPE_CHARGE_FIELDS],
        null_id=False,
    )
    assert HEX32.match(mapping)
    return create_flow(
        http,
        headers,
        REST_FLOW,
        "Stripe Connector Flow Generic Rest",
        source,
        target,
        description="Stripe Connector Description Flow Generic Rest",
        mapping=mapping,
        schedule={"startTime": "1710267858", "frequency": "minute", "interval": 15},
    )


def _capillary_chain(http: httpx.Client, headers: dict[str, str]) -> tuple[str, str]:
    base = create_connection(
        http,
        headers,
        CAPILLARY,
        "Capillary base connection",
        "OAuth generic-rest-connector",
        {"clientId": "cap-client", "clientSecret": "cap-secret", "accessToken": "cap-token"},
        description="Base connection to authenticate the Capillary source.",
    )
    call(http, "GET", f"{FS}/connections/{base}", headers, 200)
    source = create_source(
        http,
        headers,
        CAPILLARY,
        "Capillary Streaming",
        base=base,
        description="Capillary Streaming",
    )
    call(http, "GET", f"{FS}/sourceConnections/{source}", headers, 200)
    schema = create_schema(http, headers, "Capillary profile", properties=PROFILE_PROPS)
    dataset = create_dataset(
        http, headers, "Capillary profiles", schema["$id"], file_description=False
    )
    _enable_profile(http, headers, dataset)
    target = create_target(
        http, headers, dataset, schema["$id"], "Capillary Target Connection", fmt=None
    )
    mapping = create_mapping(
        http,
        headers,
        schema["$id"],
        [
            ("identityMap", "identityMap"),
            ("loyalty.points", "loyalty.points"),
            ("loyalty.tier", "loyalty.tier"),
        ],
        new_format=True,
    )
    seed_flow: dict[str, Any] = {
        "name": "Capillary dataflow",
        "description": "Capillary → Experience Platform dataflow",
        "flowSpec": {"id": REST_FLOW, "version": "1.0"},
        "sourceConnectionIds": source,
        "targetConnectionIds": target,
        "transformations": [
            {"name": "Mapping", "params": {"mappingId": mapping, "mappingVersion": "0"}}
        ],
        "scheduleParams": {"startTime": "1625040887", "frequency": "minute", "interval": 15},
    }
    as_given = http.post(f"{FS}/flows", headers=headers, json=seed_flow)
    assert as_given.status_code == 400  # the seed's ids are strings, not arrays
    seed_flow["sourceConnectionIds"] = [source]
    seed_flow["targetConnectionIds"] = [target]
    batch_flow = call(http, "POST", f"{FS}/flows", headers, 201, json=seed_flow)["id"]
    got = call(http, "GET", f"{FS}/flows/{batch_flow}", headers, 200)["items"][0]
    assert "inletUrl" not in (got.get("options") or {})
    streaming = {k: v for k, v in seed_flow.items() if k != "scheduleParams"}
    streaming.update(
        name="Capillary streaming dataflow", flowSpec={"id": STREAMING_FLOW, "version": "1.0"}
    )
    flow = call(http, "POST", f"{FS}/flows", headers, 201, json=streaming)["id"]
    return str(flow), dataset


def _customer_io_chain(http: httpx.Client, headers: dict[str, str]) -> str:
    source = customer_io_source(http, headers)
    schema = create_schema(http, headers, "Customer.io events", properties=PROFILE_PROPS)
    dataset = create_dataset(http, headers, "Customer.io", schema["$id"], file_description=False)
    _enable_profile(http, headers, dataset)
    target = create_target(
        http,
        headers,
        dataset,
        schema["$id"],
        "Streaming Target Connection for Customer.io",
        fmt="json",
    )
    mapping = call(
        http,
        "POST",
        f"{CONVERSION}/mappingSets",
        headers,
        200,
        json={
            "outputSchema": {"schemaRef": {"id": schema["$id"], "contentType": XED_FULL}},
            "mappings": [
                {
                    "destinationXdmPath": "personalEmail.address",
                    "sourceAttribute": "data.identifiers.email",
                    "identity": False,
                    "version": 0,
                }
            ],
        },
    )["id"]
    return create_flow(
        http,
        headers,
        STREAMING_FLOW,
        "Streaming Dataflow for Customer.io",
        source,
        target,
        description="Streaming Dataflow for Customer.io",
        mapping=mapping,
    )


def _sftp_chain(http: httpx.Client, headers: dict[str, str]) -> str:
    base = create_connection(
        http,
        headers,
        SFTP,
        "SFTP backfill",
        "Basic Authentication for sftp",
        {"host": "127.0.0.1", "port": 9, "userName": "aep", "password": "pw"},
    )
    source = create_source(
        http,
        headers,
        SFTP,
        "Capillary CSV",
        base=base,
        data={"format": "delimited", "properties": {"columnDelimiter": ",", "encoding": "UTF-8"}},
        params={"path": "/capillary/backfill/*.csv", "type": "folder", "recursive": True},
    )
    schema = create_schema(http, headers, "Backfill", properties=PROFILE_PROPS, identity=None)
    dataset = create_dataset(http, headers, "Backfill", schema["$id"], file_description=False)
    target = create_target(http, headers, dataset, schema["$id"], "Backfill target")
    mapping = create_mapping(
        http, headers, schema["$id"], [("email", "personalEmail.address")], null_id=False
    )
    return create_flow(
        http,
        headers,
        CLOUD_FLOW,
        "Capillary backfill",
        source,
        target,
        mapping=mapping,
        schedule={"startTime": str(int(time.time())), "frequency": "once"},
        options={"errorDiagnosticsEnabled": True, "partialIngestionPercent": 5},
    )


def _send_and_find(
    http: httpx.Client, headers: dict[str, str], flow: str, payload: dict[str, Any], email: str
) -> None:
    inlet = call(http, "GET", f"{FS}/flows/{flow}", headers, 200)["items"][0]["options"]["inletUrl"]
    response = http.post(inlet, json=payload)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 20
    while True:
        found = http.get(
            "/data/core/ups/access/entities",
            headers=headers,
            params={
                "schema.name": "_xdm.context.profile",
                "entityId": email,
                "entityIdNS": "email",
            },
        )
        if found.status_code == 200:
            return
        assert time.monotonic() < deadline, found.text
        time.sleep(0.1)


def _wait_runs(http: httpx.Client, headers: dict[str, str], flow: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        runs = call(http, "GET", f"{FS}/runs?property=flowId=={flow}", headers, 200)["items"]
        if runs and runs[0]["metrics"]["statusSummary"]["status"] in ("success", "failed"):
            call(http, "GET", f"{FS}/runs/{runs[0]['id']}", headers, 200)
            return
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _check_shapes(transport: RecordingTransport) -> None:
    """aep-api.md §12 facts the specs leave optional."""
    for ex in transport.exchanges:
        path = httpx.URL(ex.url).path
        body = (
            ex.json()
            if ex.response_headers.get("content-type", "").startswith("application/json")
            else None
        )
        if path.startswith(FS) and ex.method == "POST" and ex.status == 201:
            assert set(body) == {"id", "etag"} and UUID.match(body["id"]), ex
            assert body["etag"].startswith('"') and body["etag"].endswith('"'), ex
        if (
            path.startswith(FS)
            and ex.method == "GET"
            and ex.status == 200
            and "/explore" not in path
        ):
            assert "items" in body or "count" in body, ex
            for item in body.get("items", []):
                if "etag" in item:
                    assert item["etag"] == item["version"], ex
                for stamp in ("createdAt", "updatedAt"):
                    if stamp in item:
                        assert isinstance(item[stamp], int) and item[stamp] > 10**12, ex
        if path == f"{CATALOG}/dataSets" and ex.method == "POST" and ex.status == 201:
            assert HEX24.match(body[0].removeprefix("@/dataSets/")), ex
        if path == f"{CONVERSION}/mappingSets" and ex.method == "POST":
            assert ex.status == 200 and HEX32.match(body["id"]), ex
        if ex.status >= 400 and path.startswith(FS):
            assert body["type"].startswith("https://ns.adobe.com/aep/errors/FLOW-"), ex
            assert body["status"] == ex.status and body["report"]["request-id"], ex


def test_seed_chains_conform_to_adobe_specs(
    wire: tuple[httpx.Client, RecordingTransport, dict[str, str], str],
) -> None:
    http, transport, headers, base_url = wire
    call(http, "GET", f"{FS}/connectionSpecs?property=name==stripe", headers, 200)
    call(http, "GET", f"{FS}/flowSpecs?property=name==RestStorageToAEP", headers, 200)
    stripe = _stripe_chain(http, headers)
    capillary, capillary_dataset = _capillary_chain(http, headers)
    customer_io = _customer_io_chain(http, headers)
    sftp = _sftp_chain(http, headers)
    for flow in (stripe, capillary, customer_io, sftp):
        listed = call(http, "GET", f"{FS}/flows?property=id=={flow}", headers, 200)["items"]
        assert [f["state"] for f in listed] == ["enabled"]
    call(http, "POST", f"{FS}/flows/{stripe}/action?op=disable", headers, 200)
    call(http, "POST", f"{FS}/flows/{stripe}/action?op=enable", headers, 200)
    etag = call(http, "GET", f"{FS}/flows/{stripe}", headers, 200)["items"][0]["etag"]
    call(
        http,
        "PATCH",
        f"{FS}/flows/{stripe}",
        {**headers, "If-Match": etag},
        200,
        json=[{"op": "replace", "path": "/name", "value": "Stripe charges (renamed)"}],
    )
    call(
        http,
        "PATCH",
        f"{FS}/flows/{stripe}",
        {**headers, "If-Match": etag},
        412,
        json=[{"op": "replace", "path": "/name", "value": "stale"}],
    )
    call(http, "GET", f"{FS}/flows?limit=2", headers, 200)
    call(http, "GET", f"{FS}/flows/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers, 404)
    _send_and_find(http, headers, capillary, CAPILLARY_PROFILE, "john.doe@capillarytech.com")
    _send_and_find(
        http,
        headers,
        customer_io,
        {
            "data": {"identifiers": {"email": "webhook@example.com", "cio_id": "x"}},
            "event_id": "e1",
            "metric": "opened",
            "object_type": "email",
            "timestamp": 1676627988,
        },
        "webhook@example.com",
    )
    batches = call(http, "GET", f"{CATALOG}/batches?dataSet={capillary_dataset}", headers, 200)
    batch_id = next(iter(batches))
    call(http, "GET", f"{CATALOG}/batches/{batch_id}", headers, 200)
    call(http, "GET", f"/data/foundation/export/batches/{batch_id}/files", headers, 200)
    call(http, "GET", f"/data/foundation/export/batches/{batch_id}/failed", headers, 200)
    call(
        http,
        "GET",
        f"/data/foundation/export/batches/{batch_id}/meta?path=row_errors",
        headers,
        200,
    )
    call(http, "GET", f"/data/foundation/export/datasets/{capillary_dataset}/preview", headers, 200)
    _wait_runs(http, headers, sftp)
    call(
        http,
        "GET",
        f"{SCHEMAS}/tenant/schemas",
        {**headers, "Accept": "application/vnd.adobe.xed-id+json"},
        200,
    )
    assert len(transport.exchanges) > 60
    checker = SpecChecker(base_url)
    problems = [p for ex in transport.exchanges for p in checker.problems(ex)]
    assert problems == [], "\n".join(problems)
    _check_shapes(transport)


def test_docs_carry_the_deviations_table() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()
    table = markdown_table()
    assert table in docs
    for row in table.splitlines():
        assert row.count("|") == 6, row  # five cells: no stray pipe inside one
