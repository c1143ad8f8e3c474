"""Every request the API modules build: a path and method of Adobe's OpenAPI specs, in the form
the tutorials send (the deviations table), checked behind httpx.MockTransport."""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr

from aep import deviations
from aep.client import PlatformClient
from aep.flows import encode_source_params, patch
from config.settings import PlatformSettings, Settings

SPECS = Path(__file__).resolve().parents[2] / "spec" / "adobe-openapi"
BASES = {
    "/data/foundation/flowservice": "flow-service.yaml",
    "/data/foundation/catalog": "catalog.yaml",
    "/data/foundation/conversion": "data-prep.yaml",
    "/data/foundation/schemaregistry": "schema-registry.yaml",
    "/data/core": "profile.yaml",
    "": "streaming-ingestion.yaml",  # the inlet host
}


@cache
def _spec_paths(file: str) -> dict[re.Pattern[str], set[str]]:
    spec = yaml.safe_load((SPECS / file).read_text(encoding="utf-8"))
    out: dict[re.Pattern[str], set[str]] = {}
    for template, ops in spec["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template.rstrip("/")))
        methods = {m.upper() for m in ops if m != "parameters"}
        out.setdefault(re.compile(f"^{pattern}/?$"), set()).update(methods)
    return out


def _in_spec(request: httpx.Request) -> bool:
    path = request.url.raw_path.decode("ascii").split("?", 1)[0]  # ids stay percent-encoded
    host = request.url.host
    base = "" if host == "dcs.test" else next(b for b in BASES if b and path.startswith(b))
    rest = path[len(base) :] or "/"
    return any(
        pattern.match(rest) and request.method in methods
        for pattern, methods in _spec_paths(BASES[base]).items()
    )


class Platform:
    """Answers every call with a minimal body of the documented shape; records requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 86399})
        self.requests.append(request)
        path = request.url.path
        if "/catalog/dataSets" in path and request.method == "POST":
            return httpx.Response(201, json=["@/dataSets/5c8c3c555033b814b69f947f"])
        if "/catalog/" in path:
            return httpx.Response(
                200, json={"5c8c3c555033b814b69f947f": {"name": "n", "status": "success"}}
            )
        if path.endswith("/stats"):
            return httpx.Response(200, json={"tenantId": "acme"})
        if "/schemaregistry/tenant/descriptors" in path:
            return httpx.Response(201, json={"@id": "d1"})
        if "/schemaregistry/tenant/schemas" in path:
            item = {
                "$id": "https://ns.adobe.com/acme/schemas/1",
                "meta:altId": "_acme.schemas.1",
                "title": "t",
            }
            return httpx.Response(
                201 if request.method == "POST" else 200,
                json=item if request.method == "POST" else {"results": [item]},
            )
        if "/conversion/mappingSets/validate" in path:
            return httpx.Response(200, json={"validationResponse": [{"status": "SUCCESS"}]})
        if "/conversion/mappingSets" in path:
            if request.method == "GET" and path.endswith("/mappingSets"):
                return httpx.Response(200, json={"data": [], "_page": {"count": 0}})
            return httpx.Response(200, json={"id": "a" * 32, "version": 0})
        if "/ups/access/entities" in path:
            return httpx.Response(200, json={"x1": {"entity": {"person": {}}, "sources": ["d"]}})
        if "/collection/batch/" in path:
            n = len(json.loads(request.content)["messages"])
            return httpx.Response(207, json={"inletId": "i", "responses": [{"xactionId": "x"}] * n})
        if "/collection/" in path:
            return httpx.Response(200, json={"inletId": "i", "xactionId": "x", "receivedTimeMs": 1})
        if "/explore" in path:
            return httpx.Response(200, json={"format": "hierarchical", "schema": {}, "data": []})
        if path.endswith("/test"):
            return httpx.Response(200, json={"result": True})
        if request.method in ("POST", "PATCH"):
            return httpx.Response(
                201 if request.method == "POST" else 200, json={"id": "f1", "etag": '"2"'}
            )
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={"items": [{"id": "f1", "name": "n", "etag": '"1"'}]})


@pytest.fixture
def recorded() -> tuple[PlatformClient, Platform]:
    platform = Platform()
    settings = Settings(
        platform=PlatformSettings(
            mode="remote",
            gateway_url="https://platform.test",
            ims_url="https://ims.test",
            inlet_url="https://dcs.test",
            org_id="ORG@AdobeOrg",
            client_id="cid",
            client_secret=SecretStr("s"),
        )
    )
    return PlatformClient(settings, transport=httpx.MockTransport(platform)), platform


def _exercise(c: PlatformClient) -> None:
    f = c.flows
    for coll in (f.connections, f.source_connections, f.target_connections, f.flows):
        coll.create({"name": "n"})
        coll.get("f1")
        list(coll.list(properties=["name==n"]))
        coll.patch("f1", '"1"', [patch("replace", "/name", "m")])
        coll.delete("f1")
    list(f.connection_specs.list(properties=['name=="SFTP"']))
    list(f.flow_specs.list())
    f.enable_flow("f1")
    f.disable_flow("f1")
    list(f.runs("f1"))
    f.get_run("r1")
    f.create_run("f1", {"startTime": 1})
    f.explore(
        "c1",
        object_type="rest",
        object="json",
        file_type="json",
        preview=False,
        source_params={"resourcePath": "charges"},
    )
    f.test_connection("c1")
    c.catalog.create_dataset({"name": "d"})
    c.catalog.get_dataset("5c8c3c555033b814b69f947f")
    c.catalog.enable_profile("5c8c3c555033b814b69f947f", upsert=True)
    list(c.catalog.batches("5c8c3c555033b814b69f947f"))
    c.catalog.get_batch("b1")
    c.schemas.tenant_id()
    c.schemas.create_schema({"title": "t"})
    c.schemas.get_schema("https://ns.adobe.com/acme/schemas/1")
    list(c.schemas.schemas(title="t"))
    c.schemas.primary_identity(
        "https://ns.adobe.com/acme/schemas/1", "/personalEmail/address", "Email"
    )
    c.mappings.create_mapping_set({"mappings": [{"source": "a", "destination": "b"}]})
    c.mappings.validate({"mappings": []})
    c.mappings.get_mapping_set("a" * 32)
    list(c.mappings.mapping_sets())
    c.streaming.send(
        "https://dcs.test/collection/abc", {"header": {}, "body": {}}, sync_validation=True
    )
    c.streaming.send_batch("abc", [{"header": {}}, {"header": {}}])
    c.profiles.get_entity("jane@example.com", "email")


def test_every_request_is_a_path_and_method_of_the_specs(
    recorded: tuple[PlatformClient, Platform],
) -> None:
    client, platform = recorded
    _exercise(client)
    assert len(platform.requests) > 40
    missing = [f"{r.method} {r.url.path}" for r in platform.requests if not _in_spec(r)]
    assert missing == []


def test_the_forms_sent_are_the_tutorials(recorded: tuple[PlatformClient, Platform]) -> None:
    client, platform = recorded
    _exercise(client)
    by = {(r.method, r.url.path): r for r in platform.requests}
    action = [r for r in platform.requests if r.url.path.endswith("/flows/f1/action")]
    assert [r.url.params["op"] for r in action] == ["enable", "disable"]
    assert all("subOp" not in r.url.params for r in action)
    patched = by[("PATCH", "/data/foundation/flowservice/flows/f1")]
    assert json.loads(patched.content) == [{"op": "replace", "path": "/name", "value": "m"}]
    assert patched.headers["if-match"] == '"1"'
    explore = by[("GET", "/data/foundation/flowservice/connections/c1/explore")]
    assert explore.url.params["objectType"] == "rest"
    assert json.loads(base64.b64decode(explore.url.params["sourceParams"])) == {
        "resourcePath": "charges"
    }
    assert (
        encode_source_params({"resourcePath": "charges"}) == "eyJyZXNvdXJjZVBhdGgiOiJjaGFyZ2VzIn0="
    )
    stream = by[("POST", "/collection/abc")]
    assert stream.url.params["syncValidation"] == "true"
    assert "authorization" not in stream.headers  # unauthenticated inlet
    schema_get = [
        r for r in platform.requests if r.method == "GET" and "/tenant/schemas/" in r.url.path
    ]
    assert schema_get[0].headers["accept"].startswith("application/vnd.adobe.xed-full+json")
    listing = by[("GET", "/data/foundation/flowservice/connectionSpecs")]
    assert listing.url.params["property"] == 'name=="SFTP"'
    datasets = [r for r in platform.requests if r.url.path.endswith("/catalog/batches")]
    assert datasets[0].url.params["limit"] == "100"
    for r in platform.requests:
        if r.url.host == "platform.test":
            assert {"authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name"} <= set(
                r.headers
            )
        if r.content and "/catalog/dataSets/" in r.url.path and r.method == "PATCH":
            assert r.headers["content-type"] == "application/json-patch+json"
            assert json.loads(r.content)[0] == {
                "op": "add",
                "path": "/tags/unifiedProfile",
                "value": ["enabled:true", "isUpsert:true"],
            }
        elif r.content:
            assert r.headers["content-type"] == "application/json"


def test_deviation_helpers_follow_the_table() -> None:
    keys = {d.key for d in deviations.DEVIATIONS}
    assert {
        "flow-action-op",
        "json-patch-op-case",
        "schedule-start-time",
        "mapping-version",
        "explore-object-type",
    } <= keys
    assert all(d.tutorial_source and d.spec_source and d.sent for d in deviations.DEVIATIONS)
    assert deviations.schedule_start_time(1710267858) == "1710267858"
    assert deviations.mapping_version("2") == 2
    assert deviations.patch_op("replace") == "replace"  # type: ignore[arg-type]
    assert deviations.token_lifetime_s(86399) == 86399
    assert deviations.token_lifetime_s(86399994) == pytest.approx(86399.994)
