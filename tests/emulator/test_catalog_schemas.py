"""Catalog datasets and batches, Schema Registry, Data Prep mapping sets."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.testclient import TestClient

from tests.emulator.chains import (
    CATALOG,
    CONVERSION,
    EVENT_CLASS,
    SCHEMAS,
    XED_FULL,
    call,
    create_dataset,
    create_mapping,
    create_schema,
)

XED = "application/vnd.adobe.xed+json; version=1"


def test_stats_gives_a_tenant_id(client: TestClient, headers: dict[str, str]) -> None:
    stats = call(client, "GET", f"{SCHEMAS}/stats", {**headers, "Accept": "application/json"}, 200)
    assert re.match(r"^[a-z0-9]+$", stats["tenantId"])
    assert stats["imsOrg"] == headers["x-gw-ims-org-id"]


def test_schema_create_lookup_and_accept(client: TestClient, headers: dict[str, str]) -> None:
    schema = create_schema(client, headers, "Loyalty profile")
    tenant = call(client, "GET", f"{SCHEMAS}/stats", headers, 200)["tenantId"]
    assert re.match(rf"^https://ns.adobe.com/{tenant}/schemas/[0-9a-f]+$", schema["$id"])
    assert schema["meta:altId"].startswith(f"_{tenant}.schemas.")
    assert schema["meta:class"] == "https://ns.adobe.com/xdm/context/profile"
    assert schema["version"] == "1.0"
    no_accept = client.get(f"{SCHEMAS}/tenant/schemas", headers=headers)
    assert no_accept.status_code == 406
    ids = call(
        client,
        "GET",
        f"{SCHEMAS}/tenant/schemas",
        {**headers, "Accept": "application/vnd.adobe.xed-id+json"},
        200,
    )
    assert ids["results"] == [
        {
            "$id": schema["$id"],
            "meta:altId": schema["meta:altId"],
            "version": "1.0",
            "title": "Loyalty profile",
        }
    ]
    unversioned = client.get(
        f"{SCHEMAS}/tenant/schemas/{quote(schema['$id'], safe='')}",
        headers={**headers, "Accept": "application/vnd.adobe.xed+json"},
    )
    assert unversioned.status_code == 406
    for ref in (quote(schema["$id"], safe=""), schema["meta:altId"]):
        got = call(
            client, "GET", f"{SCHEMAS}/tenant/schemas/{ref}", {**headers, "Accept": XED}, 200
        )
        assert got["$id"] == schema["$id"]
    desc = call(
        client,
        "GET",
        f"{SCHEMAS}/tenant/schemas/{schema['meta:altId']}",
        {**headers, "Accept": "application/vnd.adobe.xed-full-desc+json; version=1"},
        200,
    )
    assert desc["meta:descriptors"][0]["xdm:isPrimary"] is True
    dup = client.post(
        f"{SCHEMAS}/tenant/schemas",
        headers=headers,
        json={"title": "Loyalty profile", "allOf": [{"$ref": EVENT_CLASS}]},
    )
    assert dup.status_code == 409
    two_classes = client.post(
        f"{SCHEMAS}/tenant/schemas",
        headers=headers,
        json={
            "title": "bad",
            "allOf": [{"$ref": EVENT_CLASS}, {"$ref": "https://ns.adobe.com/xdm/context/profile"}],
        },
    )
    assert two_classes.status_code == 400
    other = {**headers, "x-sandbox-name": "dev", "Accept": XED}
    assert (
        client.get(f"{SCHEMAS}/tenant/schemas/{schema['meta:altId']}", headers=other).status_code
        == 404
    )


def test_dataset_create_list_get(client: TestClient, headers: dict[str, str]) -> None:
    schema = create_schema(client, headers, "Profiles")
    response = client.post(
        f"{CATALOG}/dataSets?requestDataSource=true",
        headers=headers,
        json={
            "name": "capillary-profiles",
            "schemaRef": {"id": schema["$id"], "contentType": XED_FULL},
        },
    )
    assert response.status_code == 201
    ref = response.json()
    assert isinstance(ref, list) and re.match(r"^@/dataSets/[0-9a-f]{24}$", ref[0])
    did = ref[0].removeprefix("@/dataSets/")
    one = call(client, "GET", f"{CATALOG}/dataSets/{did}", headers, 200)
    assert list(one) == [did]
    assert one[did]["name"] == "capillary-profiles"
    assert isinstance(one[did]["created"], int)
    for n in range(22):
        create_dataset(client, headers, f"ds{n}", schema["$id"])
    default = call(client, "GET", f"{CATALOG}/dataSets", headers, 200)
    assert len(default) == 20 and did in default
    assert len(call(client, "GET", f"{CATALOG}/dataSets?limit=100", headers, 200)) == 23
    assert client.get(f"{CATALOG}/dataSets?limit=0", headers=headers).status_code == 400
    assert client.get(f"{CATALOG}/dataSets?limit=101", headers=headers).status_code == 400
    named = call(client, "GET", f"{CATALOG}/dataSets?name=ds3&properties=name", headers, 200)
    assert list(named.values()) == [{"name": "ds3"}]
    assert client.get(f"{CATALOG}/dataSets/{'0' * 24}", headers=headers).status_code == 404
    unknown = client.post(
        f"{CATALOG}/dataSets",
        headers=headers,
        json={
            "name": "x",
            "schemaRef": {"id": "https://ns.adobe.com/x/schemas/none", "contentType": XED_FULL},
        },
    )
    assert unknown.status_code == 400


def test_profile_enablement_needs_union_and_primary_identity(
    client: TestClient, headers: dict[str, str]
) -> None:
    enable = [
        {"op": "add", "path": "/tags/unifiedProfile", "value": ["enabled:true"]},
        {"op": "add", "path": "/tags/unifiedIdentity", "value": ["enabled:true"]},
    ]
    patch_headers = {**headers, "Content-Type": "application/json-patch+json"}
    plain = create_schema(client, headers, "No union", union=False, identity=None)
    ds = create_dataset(client, headers, "no-union", plain["$id"])
    refused = client.patch(f"{CATALOG}/dataSets/{ds}", headers=patch_headers, json=enable)
    assert refused.status_code == 400
    assert "union" in refused.json()["detail"]
    no_identity = create_schema(client, headers, "Union only", identity=None)
    ds2 = create_dataset(client, headers, "union-only", no_identity["$id"])
    refused = client.patch(f"{CATALOG}/dataSets/{ds2}", headers=patch_headers, json=enable)
    assert refused.status_code == 400
    assert "primary identity" in refused.json()["detail"]
    good = create_schema(client, headers, "Ready")
    ds3 = create_dataset(client, headers, "ready", good["$id"])
    done = call(client, "PATCH", f"{CATALOG}/dataSets/{ds3}", patch_headers, 200, json=enable)
    assert done == [f"@/dataSets/{ds3}"]
    tags = call(client, "GET", f"{CATALOG}/dataSets/{ds3}", headers, 200)[ds3]["tags"]
    assert tags["unifiedProfile"] == ["enabled:true"]
    union = [{"op": "add", "path": "/meta:immutableTags", "value": ["union"]}]
    call(
        client,
        "PATCH",
        f"{SCHEMAS}/tenant/schemas/{quote(plain['$id'], safe='')}",
        headers,
        200,
        json=union,
    )
    still = client.patch(f"{CATALOG}/dataSets/{ds}", headers=patch_headers, json=enable)
    assert still.status_code == 400 and "primary identity" in still.json()["detail"]


def test_mapping_sets_both_formats_answer_200(client: TestClient, headers: dict[str, str]) -> None:
    schema = create_schema(client, headers, "Charges", identity=None, union=False)
    old = create_mapping(client, headers, schema["$id"], [("data.id", "chargeId")])
    new = create_mapping(client, headers, schema["$id"], [("data.id", "chargeId")], new_format=True)
    for mid in (old, new):
        assert re.match(r"^[0-9a-f]{32}$", mid)
        got = call(client, "GET", f"{CONVERSION}/mappingSets/{mid}", headers, 200)
        mapping = got["mappings"][0]
        assert mapping["source"] == mapping["sourceAttribute"] == "data.id"
        assert mapping["destination"] == mapping["destinationXdmPath"] == "chargeId"
        assert got["outputSchema"]["schemaRef"]["id"] == schema["$id"]
    listed = call(client, "GET", f"{CONVERSION}/mappingSets?limit=10&start=0", headers, 200)
    assert {m["id"] for m in listed["data"]} == {old, new}
    body = {
        "xdmSchema": schema["$id"],
        "mappings": [{"sourceAttribute": "data.id", "destinationXdmPath": "chargeId"}],
    }
    updated = call(client, "PUT", f"{CONVERSION}/mappingSets/{old}", headers, 200, json=body)
    assert updated["version"] == 1
    assert (
        call(client, "GET", f"{CONVERSION}/mappingSets/{old}?version=0", headers, 200)["version"]
        == 0
    )
    missing = client.post(
        f"{CONVERSION}/mappingSets",
        headers=headers,
        json={"xdmSchema": schema["$id"], "mappings": [{"sourceAttribute": "a"}]},
    )
    assert missing.status_code == 400


def test_mapping_validate_and_preview(client: TestClient, headers: dict[str, str]) -> None:
    result = call(
        client,
        "POST",
        f"{CONVERSION}/mappingSets/validate",
        headers,
        200,
        json={
            "mappings": [
                {"sourceType": "ATTRIBUTE", "source": "a", "destination": "b"},
                {"sourceType": "ATTRIBUTE", "source": "a"},
            ]
        },
    )
    statuses = [r["status"] for r in result["validationResponse"]]
    assert statuses == ["SUCCESS", "FAILED"]
    preview = call(
        client,
        "POST",
        f"{CONVERSION}/mappingSets/preview",
        headers,
        200,
        json={
            "data": [{"first": "Ada", "amount": "12"}],
            "mappingSet": {
                "mappings": [
                    {
                        "sourceType": "ATTRIBUTE",
                        "source": "first",
                        "destination": "person.name.firstName",
                    }
                ]
            },
        },
    )
    assert preview == [{"data": {"person": {"name": {"firstName": "Ada"}}}, "errors": None}]
