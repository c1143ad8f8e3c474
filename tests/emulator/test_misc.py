"""Smaller endpoints: deletes, descriptor reads, connection test, IMS form errors, state view."""

from __future__ import annotations

from urllib.parse import quote

from starlette.testclient import TestClient

from tests.emulator.chains import (
    CATALOG,
    FS,
    SCHEMAS,
    STRIPE,
    call,
    create_dataset,
    create_schema,
    customer_io_chain,
    stripe_base,
)
from tests.emulator.conftest import ORG, SANDBOX

XED = "application/vnd.adobe.xed+json; version=1"


def test_schema_and_descriptor_reads_and_deletes(
    client: TestClient, headers: dict[str, str]
) -> None:
    schema = create_schema(client, headers, "Disposable")
    grouped = call(client, "GET", f"{SCHEMAS}/tenant/descriptors", headers, 200)
    listed = grouped["xdm:descriptorIdentity"]
    assert [d["xdm:sourceSchema"] for d in listed] == [schema["$id"]]
    one = call(client, "GET", f"{SCHEMAS}/tenant/descriptors/{listed[0]['@id']}", headers, 200)
    assert one["xdm:namespace"] == "Email"
    again = client.post(
        f"{SCHEMAS}/tenant/descriptors",
        headers=headers,
        json={**{k: v for k, v in one.items() if k.startswith("xdm:") or k == "@type"}},
    )
    assert again.status_code == 409  # one primary identity per schema
    ref = quote(schema["$id"], safe="")
    assert client.delete(f"{SCHEMAS}/tenant/schemas/{ref}", headers=headers).status_code == 204
    gone = client.get(f"{SCHEMAS}/tenant/schemas/{ref}", headers={**headers, "Accept": XED})
    assert gone.status_code == 404


def test_dataset_delete_and_missing_batch(client: TestClient, headers: dict[str, str]) -> None:
    schema = create_schema(client, headers, "Temp", identity=None, union=False)
    did = create_dataset(client, headers, "temp", schema["$id"])
    assert call(client, "DELETE", f"{CATALOG}/dataSets/{did}", headers, 200) == [
        f"@/dataSets/{did}"
    ]
    assert client.get(f"{CATALOG}/dataSets/{did}", headers=headers).status_code == 404
    assert (
        client.get(f"{CATALOG}/batches/01ABCDEFGHJKMNPQRSTVWXYZ00", headers=headers).status_code
        == 404
    )
    assert (
        client.get("/data/foundation/export/batches/nope/files", headers=headers).status_code == 404
    )


def test_connection_test_and_unknown_ids(client: TestClient, headers: dict[str, str]) -> None:
    rid = stripe_base(client, headers, "s", "x")
    assert call(client, "GET", f"{FS}/connections/{rid}/test", headers, 200) == {"result": True}
    for path in (
        f"{FS}/connections/nope",
        f"{FS}/runs/nope",
        f"{FS}/flowSpecs/nope",
        f"{FS}/connectionSpecs/nope",
        f"{FS}/targetConnections/nope",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404
    wrong_base = client.post(
        f"{FS}/sourceConnections",
        headers=headers,
        json={"name": "x", "baseConnectionId": "nope", "connectionSpec": {"id": STRIPE}},
    )
    assert wrong_base.status_code == 400
    unknown_dataset = client.post(
        f"{FS}/targetConnections",
        headers=headers,
        json={
            "name": "x",
            "connectionSpec": {"id": "c604ff05-7f1a-43c0-8e18-33bf874cb11c"},
            "params": {"dataSetId": "0" * 24},
        },
    )
    assert unknown_dataset.status_code == 400


def test_ims_form_errors(client: TestClient) -> None:
    no_grant = client.post("/ims/token/v3", data={"client_id": "x"})
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "invalid_request"
    no_client = client.post("/ims/token/v3", data={"grant_type": "client_credentials"})
    assert no_client.status_code == 400
    as_query = client.post(
        "/ims/token/v3?grant_type=client_credentials&client_id=aep-emulator-dev"
        "&client_secret=aep-emulator-dev-secret"
    )
    assert as_query.status_code == 200


def test_state_view_and_landings_hold_everything(
    client: TestClient, headers: dict[str, str]
) -> None:
    chain = customer_io_chain(client, headers)
    assert (
        client.post(
            "/_emulator/landings/withhold", json={"org": ORG, "sandbox": SANDBOX, "datasetId": None}
        ).status_code
        == 201
    )
    inlet = call(client, "GET", f"{FS}/flows/{chain['flow']}", headers, 200)["items"][0]["options"][
        "inletUrl"
    ].removeprefix("http://testserver")
    legacy = client.post(
        f"{inlet}?synchronousValidation=true",
        json={"data": {"identifiers": {"email": "s@example.com"}}},
    )
    assert legacy.json()["syncValidation"] == {"status": "pass"}
    client.app.state.worker.run_once()  # type: ignore[attr-defined]
    state = client.get("/_emulator/state").json()
    assert [p["kind"] for p in state["pending"]] == ["landing"]
    assert "aep-emulator-dev" in state["clients"]
    assert chain["flow"] in state["resources"][f"{ORG}/{SANDBOX}"]["flows"]
    assert client.delete("/_emulator/landings/withhold").status_code == 204
    client.app.state.worker.run_once()  # type: ignore[attr-defined]
    assert client.get("/_emulator/state").json()["pending"] == []
