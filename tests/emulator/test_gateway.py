"""IMS tokens and the gateway's header checks, with Adobe's exact bodies."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.store import Store
from tests.emulator.conftest import ORG, platform_headers, token_for

FLOWS = "/data/foundation/flowservice/flows"


def test_token_is_bearer_with_expiry_in_seconds(client: TestClient) -> None:
    response = client.post(
        "/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": "aep-emulator-dev",
            "client_secret": "aep-emulator-dev-secret",
            "scope": "openid",
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert body["access_token"]


def test_wrong_secret_is_invalid_client(client: TestClient) -> None:
    response = client.post(
        "/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": "aep-emulator-dev",
            "client_secret": "nope",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_other_grant_type_is_refused(client: TestClient) -> None:
    response = client.post(
        "/ims/token/v3",
        data={"grant_type": "authorization_code", "client_id": "x", "client_secret": "y"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_token_is_403010(client: TestClient) -> None:
    response = client.get(FLOWS)
    assert response.status_code == 403
    assert response.json() == {"error_code": "403010", "message": "Oauth token is missing."}


def test_unknown_token_is_401013(client: TestClient) -> None:
    response = client.get(FLOWS, headers=platform_headers("forged"))
    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


def test_expired_token_is_401013(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path, token_lifetime_s=1, worker=False)
    store = Store(tmp_path)
    with TestClient(create_app(config, store=store)) as client:
        headers = platform_headers(token_for(client))
        assert client.get(FLOWS, headers=headers).status_code == 200
        time.sleep(1.1)
        response = client.get(FLOWS, headers=headers)
    store.close()
    assert response.status_code == 401
    assert response.json()["error_code"] == "401013"


def test_missing_api_key_is_403000(client: TestClient, headers: dict[str, str]) -> None:
    del headers["x-api-key"]
    response = client.get(FLOWS, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error_code": "403000", "message": "Api Key is required"}


def test_api_key_of_another_client_is_403003(client: TestClient, headers: dict[str, str]) -> None:
    headers["x-api-key"] = "someone-else"
    response = client.get(FLOWS, headers=headers)
    assert response.status_code == 403
    assert response.json()["error_code"] == "403003"


def test_missing_org_is_400003(client: TestClient, headers: dict[str, str]) -> None:
    del headers["x-gw-ims-org-id"]
    response = client.get(FLOWS, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error_code": "400003", "message": "Missing header"}


def test_missing_sandbox_is_flow_2105_problem(client: TestClient, headers: dict[str, str]) -> None:
    del headers["x-sandbox-name"]
    response = client.get(FLOWS, headers=headers)
    body = response.json()
    assert response.status_code == 400
    assert body["type"] == "https://ns.adobe.com/aep/errors/FLOW-2105-400"
    assert body["status"] == 400
    assert body["report"]["request-id"]


def test_json_syntax_error_is_400_problem_naming_position(
    client: TestClient, headers: dict[str, str]
) -> None:
    json_headers = {**headers, "Content-Type": "application/json"}
    response = client.post(FLOWS, headers=json_headers, content=b'{\n  "name": "x",\n}')
    body = response.json()
    assert response.status_code == 400
    assert body["type"].endswith("-400")
    assert "line 3, column 1" in body["report"]["detailed-message"]


def test_invalid_utf8_and_empty_bodies_are_400(client: TestClient, headers: dict[str, str]) -> None:
    json_headers = {**headers, "Content-Type": "application/json"}
    for raw in (b"\xff\xfe{", b"", b"   "):
        response = client.post(FLOWS, headers=json_headers, content=raw)
        assert response.status_code == 400
        assert response.json()["type"].startswith("https://ns.adobe.com/aep/errors/FLOW-14")


def test_malformed_json_everywhere_is_400_never_500(
    client: TestClient, headers: dict[str, str]
) -> None:
    paths = [
        "/data/foundation/flowservice/connections",
        "/data/foundation/flowservice/sourceConnections",
        "/data/foundation/flowservice/targetConnections",
        "/data/foundation/flowservice/runs",
        "/data/foundation/catalog/dataSets",
        "/data/foundation/schemaregistry/tenant/schemas",
        "/data/foundation/schemaregistry/tenant/descriptors",
        "/data/foundation/conversion/mappingSets",
        "/data/foundation/conversion/mappingSets/validate",
        "/data/foundation/conversion/mappingSets/preview",
    ]
    for path in paths:
        response = client.post(
            path, headers={**headers, "Content-Type": "application/json"}, content=b'{"a": [1,}'
        )
        assert response.status_code == 400, (path, response.text)
        assert response.json()["status"] == 400


def test_unknown_path_is_404_problem(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/data/foundation/flowservice/nothing", headers=headers)
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_sandboxes_and_orgs_are_isolated(client: TestClient, headers: dict[str, str]) -> None:
    body = {
        "name": "s",
        "connectionSpec": {"id": "96479064-7b8a-4d69-b9ed-21c5683837ea", "version": "1.0"},
        "data": {"format": "json"},
    }
    created = client.post(
        "/data/foundation/flowservice/sourceConnections", headers=headers, json=body
    ).json()
    path = f"/data/foundation/flowservice/sourceConnections/{created['id']}"
    assert client.get(path, headers=headers).status_code == 200
    other_sandbox = {**headers, "x-sandbox-name": "dev"}
    other_org = {**headers, "x-gw-ims-org-id": "OTHER@AdobeOrg"}
    for other in (other_sandbox, other_org):
        response = client.get(path, headers=other)
        assert response.status_code == 404
        assert response.json()["type"] == "https://ns.adobe.com/aep/errors/FLOW-1439-404"
    assert ORG in client.get(path, headers=headers).json()["items"][0]["imsOrgId"]


def test_odd_shapes_are_400_not_500(client: TestClient, headers: dict[str, str]) -> None:
    schema = client.post(
        "/data/foundation/schemaregistry/tenant/schemas",
        headers=headers,
        json={
            "title": "s",
            "description": "s",
            "type": "object",
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}],
        },
    ).json()
    dataset = client.post(
        "/data/foundation/catalog/dataSets",
        headers=headers,
        json={"name": "d", "schemaRef": {"id": schema["$id"], "contentType": "x"}},
    ).json()[0]
    did = dataset.removeprefix("@/dataSets/")
    cases = [
        ("PATCH", f"/data/foundation/catalog/dataSets/{did}", {"tags": "x"}),
        (
            "PATCH",
            f"/data/foundation/catalog/dataSets/{did}",
            [{"op": "add", "path": "/tags/unifiedProfile", "value": "enabled:true"}],
        ),
        (
            "POST",
            "/data/foundation/catalog/dataSets",
            {"name": "d", "schemaRef": {"id": schema["$id"]}, "tags": ["x"]},
        ),
        (
            "POST",
            "/data/foundation/conversion/mappingSets/preview",
            {"data": [1], "mappingSet": {"mappings": [{"source": "a", "destination": "b"}]}},
        ),
        (
            "POST",
            "/data/foundation/flowservice/flows",
            {
                "name": "f",
                "flowSpec": {"id": "e77fde5a-22a8-11ed-861d-0242ac120002"},
                "sourceConnectionIds": ["a"],
                "targetConnectionIds": [1],
            },
        ),
    ]
    for method, path, body in cases:
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 400, (path, body, response.text)
    assert client.post("/_emulator/faults", json={"path": "("}).status_code == 400
    assert client.get("/ims/token/v3").status_code == 405


def test_body_without_json_content_type_is_400(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(
        FLOWS, headers={**headers, "Content-Type": "text/plain"}, content=b'{"name": "x"}'
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "/placeholder/type/uri",
        "status": 400,
        "title": "BadRequestError",
        "detail": "A valid content-type must be specified",
    }
    no_body = client.post(f"{FLOWS}/nope/action?op=enable", headers=headers)
    assert no_body.status_code == 404  # no body, no Content-Type needed


def test_every_platform_answer_carries_a_request_id(
    client: TestClient, headers: dict[str, str]
) -> None:
    ok = client.get(FLOWS, headers=headers)
    assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 32
    refused = client.get(f"{FLOWS}/nope", headers={**headers, "x-request-id": "mine-1"})
    assert refused.headers["x-request-id"] == "mine-1"
    assert refused.json()["report"]["request-id"] == "mine-1"
