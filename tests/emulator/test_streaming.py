"""Streaming inlets, delayed landing into a dataset and Profile, Data Access, landing holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.store import Store
from tests.emulator.chains import (
    CATALOG,
    FS,
    HTTP_API,
    HTTP_XDM_FLOW,
    XED_FULL,
    call,
    create_flow,
    create_source,
    create_target,
    customer_io_chain,
    http_api_base,
)
from tests.emulator.conftest import ORG, SANDBOX, platform_headers, token_for

PROPS: dict[str, Any] = {
    "personalEmail": {
        "type": "object",
        "properties": {"address": {"type": "string", "format": "email"}},
    },
    "eventId": {"type": "string"},
    "metric": {"type": "string", "enum": ["sent", "opened", "clicked"]},
}
EXPORT = "/data/foundation/export"


def _webhook(email: str, metric: str = "opened", event: str = "ev1") -> dict[str, Any]:
    return {
        "data": {"identifiers": {"email": email, "cio_id": "c1"}},
        "event_id": event,
        "metric": metric,
        "object_type": "email",
        "timestamp": 1676627988,
    }


def _inlet_path(client: TestClient, headers: dict[str, str], flow: str) -> str:
    url = call(client, "GET", f"{FS}/flows/{flow}", headers, 200)["items"][0]["options"]["inletUrl"]
    return str(url).removeprefix("http://testserver")


def _land(client: TestClient) -> int:
    worker = client.app.state.worker  # type: ignore[attr-defined]
    return int(worker.run_once())


def _profile(client: TestClient, headers: dict[str, str], email: str) -> Any:
    return client.get(
        "/data/core/ups/access/entities",
        headers=headers,
        params={"schema.name": "_xdm.context.profile", "entityId": email, "entityIdNS": "email"},
    )


def test_webhook_lands_in_dataset_and_profile(client: TestClient, headers: dict[str, str]) -> None:
    chain = customer_io_chain(client, headers, schema_properties=PROPS)
    inlet = _inlet_path(client, headers, chain["flow"])
    response = client.post(inlet, json=_webhook("ada@example.com"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inletId"] == inlet.rsplit("/", 1)[1]
    assert isinstance(body["receivedTimeMs"], int) and body["xactionId"]
    assert _profile(client, headers, "ada@example.com").status_code == 404
    assert _land(client) == 1
    batches = call(client, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200)
    [(batch_id, batch)] = batches.items()
    assert batch["status"] == "success" and batch["recordCount"] == 1
    assert batch["failedRecordCount"] == 0
    found = _profile(client, headers, "ada@example.com")
    assert found.status_code == 200
    [entity] = found.json().values()
    assert entity["entity"]["personalEmail"]["address"] == "ada@example.com"
    assert entity["entity"]["metric"] == "opened"
    assert chain["dataset"] in entity["sources"]
    files = call(client, "GET", f"{EXPORT}/batches/{batch_id}/files", headers, 200)["data"]
    assert files[0]["records"] == "1"
    listing = call(client, "GET", f"{EXPORT}/files/{files[0]['dataSetFileId']}", headers, 200)
    content = client.get(listing["data"][0]["_links"]["self"]["href"], headers=headers)
    assert json.loads(content.text.splitlines()[0])["eventId"] == "ev1"
    preview = call(client, "GET", f"{EXPORT}/datasets/{chain['dataset']}/preview", headers, 200)
    assert preview["data"][0]["metric"] == "opened"


def test_invalid_async_record_goes_to_failed_batch(
    client: TestClient, headers: dict[str, str]
) -> None:
    chain = customer_io_chain(client, headers, schema_properties=PROPS)
    inlet = _inlet_path(client, headers, chain["flow"])
    assert client.post(inlet, json=_webhook("bo@example.com", metric="exploded")).status_code == 200
    assert client.post(inlet, json=_webhook("cy@example.com")).status_code == 200
    _land(client)
    [(batch_id, batch)] = call(
        client, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200
    ).items()
    assert (batch["recordCount"], batch["failedRecordCount"]) == (1, 1)
    listing = call(client, "GET", f"{EXPORT}/batches/{batch_id}/meta?path=row_errors", headers, 200)
    href = listing["data"][0]["_links"]["self"]["href"]
    errors = [json.loads(line) for line in client.get(href, headers=headers).text.splitlines()]
    assert len(errors) == 1 and "exploded" in errors[0]["raw"]
    failed = call(client, "GET", f"{EXPORT}/batches/{batch_id}/failed", headers, 200)
    assert failed["data"][0]["name"] == "failed-00000.json"


def test_sync_validation_reports_at_most_five_causes(
    client: TestClient, headers: dict[str, str]
) -> None:
    props = {f"f{n}": {"type": "integer"} for n in range(8)}
    props.update(PROPS)
    chain = customer_io_chain(client, headers, schema_properties=props)
    schema_id = chain["schema"]
    dataset = chain["dataset"]
    base = http_api_base(client, headers, "http", "h")
    source = create_source(client, headers, HTTP_API, "h", base=base)
    target = create_target(client, headers, dataset, schema_id)
    flow = create_flow(client, headers, HTTP_XDM_FLOW, "xdm", source, target)
    inlet = _inlet_path(client, headers, flow)
    ref = {"id": schema_id, "contentType": XED_FULL}
    bad = {f"f{n}": "not a number" for n in range(8)}
    envelope = {
        "header": {"schemaRef": ref, "imsOrgId": ORG, "datasetId": dataset, "flowId": flow},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": bad},
    }
    refused = client.post(f"{inlet}?syncValidation=true", json=envelope)
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["status"] == 400
    causes = problem["report"]["cause"]["_streamingValidation"]
    assert 1 <= len(causes) <= 5
    good = {
        "header": envelope["header"],
        "body": {
            "xdmMeta": {"schemaRef": ref},
            "xdmEntity": {"personalEmail": {"address": "dee@example.com"}},
        },
    }
    passed = client.post(f"{inlet}?syncValidation=true", json=good)
    assert passed.status_code == 200 and passed.json()["syncValidation"] == {"status": "pass"}
    wrong_org = {**good, "header": {**good["header"], "imsOrgId": "OTHER@AdobeOrg"}}
    assert client.post(inlet, json=wrong_org).status_code == 400
    _land(client)
    assert _profile(client, headers, "dee@example.com").status_code == 200


def test_batch_endpoint_answers_207_per_message(
    client: TestClient, headers: dict[str, str]
) -> None:
    chain = customer_io_chain(client, headers, schema_properties=PROPS)
    batch_path = _inlet_path(client, headers, chain["flow"]).replace(
        "/collection/", "/collection/batch/"
    )
    response = client.post(
        batch_path,
        json={"messages": [_webhook("e1@example.com"), "nope", _webhook("e2@example.com")]},
    )
    assert response.status_code == 207
    results = response.json()["responses"]
    assert "xactionId" in results[0] and "xactionId" in results[2]
    assert results[1]["statusCode"] == 400
    _land(client)
    [batch] = call(
        client, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200
    ).values()
    assert batch["recordCount"] == 2


def test_size_limit_unknown_inlet_and_bad_json(client: TestClient, headers: dict[str, str]) -> None:
    chain = customer_io_chain(client, headers)
    inlet = _inlet_path(client, headers, chain["flow"])
    big = client.post(
        inlet,
        content=b'{"x": "' + b"a" * (1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413
    assert client.post("/collection/" + "0" * 64, json={"a": 1}).status_code == 404
    broken = client.post(inlet, content=b'{"a": }', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["status"] == 400


def test_withheld_landing_waits_until_released(client: TestClient, headers: dict[str, str]) -> None:
    chain = customer_io_chain(client, headers)
    inlet = _inlet_path(client, headers, chain["flow"])
    held = client.post(
        "/_emulator/landings/withhold",
        json={"org": ORG, "sandbox": SANDBOX, "datasetId": chain["dataset"]},
    )
    assert held.status_code == 201
    client.post(inlet, json=_webhook("held@example.com"))
    _land(client)
    assert call(client, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200) == {}
    assert client.delete("/_emulator/landings/withhold").status_code == 204
    _land(client)
    assert (
        len(call(client, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200)) == 1
    )


def test_pending_landing_survives_the_process_that_accepted_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Store(state)
    config = EmulatorConfig(state_dir=state, worker=False, landing_delay_s=0.0)
    with TestClient(create_app(config, store=first)) as one:
        headers = platform_headers(token_for(one))
        chain = customer_io_chain(one, headers)
        inlet = _inlet_path(one, headers, chain["flow"])
        assert one.post(inlet, json=_webhook("later@example.com")).status_code == 200
    first.close()
    second = Store(state)
    with TestClient(create_app(config, store=second)) as two:
        assert _land(two) == 1
        assert _profile(two, headers, "later@example.com").status_code == 200
    second.close()


def test_profile_lookup_needs_known_schema_name(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get(
        "/data/core/ups/access/entities",
        headers=headers,
        params={"schema.name": "_xdm.context.nothing", "entityId": "x"},
    )
    assert response.status_code == 400
    no_id = client.get(
        "/data/core/ups/access/entities",
        headers=headers,
        params={"schema.name": "_xdm.context.profile"},
    )
    assert no_id.status_code == 400


def test_sync_validation_is_limited_to_60_a_minute(
    client: TestClient, headers: dict[str, str]
) -> None:
    chain = customer_io_chain(client, headers, schema_properties=PROPS)
    inlet = _inlet_path(client, headers, chain["flow"])
    statuses = [
        client.post(f"{inlet}?syncValidation=true", json=_webhook(f"r{n}@example.com")).status_code
        for n in range(61)
    ]
    if statuses[-1] != 429:  # the minute turned during the burst: one more window
        statuses.append(
            client.post(f"{inlet}?syncValidation=true", json=_webhook("x@example.com")).status_code
        )
    assert statuses.count(429) == 1 and statuses[-1] == 429
    limited = client.post(f"{inlet}?syncValidation=true", json=_webhook("y@example.com"))
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 60
    assert client.post(inlet, json=_webhook("z@example.com")).status_code == 200


def test_authenticated_inlet_needs_a_token(client: TestClient, headers: dict[str, str]) -> None:
    chain = customer_io_chain(client, headers, schema_properties=PROPS)
    base = http_api_base(client, headers, "trusted", "t", authentication_required=True)
    source = create_source(client, headers, HTTP_API, "trusted", base=base)
    target = create_target(client, headers, chain["dataset"], chain["schema"])
    flow = create_flow(client, headers, HTTP_XDM_FLOW, "trusted", source, target)
    inlet = _inlet_path(client, headers, flow)
    record = {"personalEmail": {"address": "t@example.com"}}
    missing = client.post(inlet, json=record)
    assert missing.status_code == 401
    assert missing.json()["status"] == "401"  # DCS writes it as a string
    forged = client.post(inlet, json=record, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    ok = client.post(inlet, json=record, headers={"Authorization": headers["Authorization"]})
    assert ok.status_code == 200
