"""Flow Service: specs, connections, flows — Adobe's shapes, validation, concurrency, listing."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from tests.emulator.chains import (
    CAPILLARY,
    CLOUD_FLOW,
    CUSTOMER_IO,
    DATA_LAKE,
    FS,
    HTTP_API,
    HTTP_MAPPING_FLOW,
    HTTP_XDM_FLOW,
    REST_FLOW,
    SFTP,
    STREAMING_FLOW,
    STRIPE,
    call,
    create_connection,
    create_dataset,
    create_flow,
    create_mapping,
    create_schema,
    create_source,
    create_target,
    customer_io_chain,
    flow_body,
    http_api_base,
    stripe_base,
    stripe_source,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ETAG = re.compile(r'^"[^"]+"$')


def _stripe_base(client: TestClient, headers: dict[str, str], name: str = "Stripe base") -> str:
    return stripe_base(
        client,
        headers,
        name,
        "sk_test_123",
        description="Authenticated base connection for Stripe",
    )


def _stripe_chain(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    base = _stripe_base(client, headers)
    source = stripe_source(client, headers, base, "Stripe charges", "charges")
    schema = create_schema(client, headers, "Stripe charges", identity=None, union=False)
    dataset = create_dataset(client, headers, "charges", schema["$id"])
    target = create_target(client, headers, dataset, schema["$id"])
    mapping = create_mapping(client, headers, schema["$id"], [("data.id", "chargeId")])
    return {
        "base": base,
        "source": source,
        "target": target,
        "mapping": mapping,
        "schema": schema["$id"],
        "dataset": dataset,
    }


def _flow_body(chain: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = flow_body(
        REST_FLOW,
        "Stripe flow",
        chain["source"],
        chain["target"],
        mapping=chain["mapping"],
        schedule={"startTime": "1710267858", "frequency": "minute", "interval": 15},
    )
    body.update(extra)
    return body


def _patch_current(
    client: TestClient, headers: dict[str, str], path: str, ops: list[dict[str, Any]]
) -> Any:
    """PATCH `path` with `ops`, If-Match the etag a GET returns just before."""
    etag = call(client, "GET", path, headers, 200)["items"][0]["etag"]
    return client.patch(path, headers={**headers, "If-Match": etag}, json=ops)


def test_specs_are_seeded_and_filterable(client: TestClient, headers: dict[str, str]) -> None:
    specs = call(client, "GET", f"{FS}/connectionSpecs", headers, 200)["items"]
    assert {DATA_LAKE, STRIPE, CAPILLARY, CUSTOMER_IO, HTTP_API, SFTP} <= {s["id"] for s in specs}
    flows = call(client, "GET", f"{FS}/flowSpecs", headers, 200)["items"]
    assert {REST_FLOW, CLOUD_FLOW, STREAMING_FLOW, HTTP_XDM_FLOW, HTTP_MAPPING_FLOW} <= {
        f["id"] for f in flows
    }
    by_name = call(
        client, "GET", f'{FS}/flowSpecs?property=name=="CloudStorageToAEP"', headers, 200
    )["items"]
    assert [f["id"] for f in by_name] == [CLOUD_FLOW]
    for_capillary = call(
        client,
        "GET",
        f"{FS}/flowSpecs?property=sourceConnectionSpecIds[]=={CAPILLARY}",
        headers,
        200,
    )["items"]
    assert {f["name"] for f in for_capillary} == {"RestStorageToAEP", "GenericStreamingAEP"}
    single = call(client, "GET", f"{FS}/connectionSpecs/{SFTP}", headers, 200)
    assert single["items"][0]["name"] == "SFTP"


def test_create_and_get_shapes_with_masked_credentials(
    client: TestClient, headers: dict[str, str]
) -> None:
    created = call(
        client,
        "POST",
        f"{FS}/connections",
        headers,
        201,
        json={
            "name": "Stripe base",
            "connectionSpec": {"id": STRIPE, "version": "1.0"},
            "auth": {
                "specName": "OAuth2 Refresh Code",
                "params": {"accessToken": "sk_live_SECRET"},
            },
        },
    )
    assert set(created) == {"id", "etag"}
    assert UUID.match(created["id"])
    assert ETAG.match(created["etag"])
    one = client.get(f"{FS}/connections/{created['id']}", headers=headers)
    assert "sk_live_SECRET" not in one.text
    item = one.json()["items"][0]
    assert item["etag"] == item["version"] == created["etag"]
    assert item["auth"]["params"]["accessToken"] == "******"
    assert isinstance(item["createdAt"], int) and item["createdAt"] > 1_600_000_000_000
    assert item["state"] == "enabled"
    listed = client.get(f"{FS}/connections", headers=headers)
    assert "sk_live_SECRET" not in listed.text
    assert [i["id"] for i in listed.json()["items"]] == [created["id"]]
    state = client.get("/_emulator/state")
    assert state.status_code == 200
    assert "sk_live_SECRET" not in state.text


def test_patch_needs_if_match_and_current_etag(client: TestClient, headers: dict[str, str]) -> None:
    rid = _stripe_base(client, headers)
    path = f"{FS}/connections/{rid}"
    ops = [{"op": "replace", "path": "/name", "value": "renamed"}]
    missing = client.patch(path, headers=headers, json=ops)
    assert missing.status_code == 400
    assert missing.json()["type"].endswith("FLOW-1403-400")
    etag = call(client, "GET", path, headers, 200)["items"][0]["etag"]
    done = call(client, "PATCH", path, {**headers, "If-Match": etag}, 200, json=ops)
    assert done["id"] == rid and done["etag"] != etag and ETAG.match(done["etag"])
    stale = client.patch(path, headers={**headers, "If-Match": etag}, json=ops)
    assert stale.status_code == 412
    assert stale.json()["type"].endswith("FLOW-1404-412")
    upper = [{"op": "REPLACE", "path": "/description", "value": "upper-case op"}]
    call(client, "PATCH", path, {**headers, "If-Match": done["etag"]}, 200, json=upper)
    item = call(client, "GET", path, headers, 200)["items"][0]
    assert item["name"] == "renamed" and item["description"] == "upper-case op"
    moved = client.patch(
        path,
        headers={**headers, "If-Match": item["etag"]},
        json=[{"op": "move", "from": "/name", "path": "/x"}],
    )
    assert moved.status_code == 400
    assert moved.json()["type"].endswith("FLOW-1434-400")
    spec = client.patch(
        path,
        headers={**headers, "If-Match": item["etag"]},
        json=[{"op": "replace", "path": "/connectionSpec/id", "value": SFTP}],
    )
    assert spec.json()["type"].endswith("FLOW-1414-400")


def test_patching_back_a_masked_secret_is_refused(
    client: TestClient, headers: dict[str, str]
) -> None:
    rid = _stripe_base(client, headers)
    path = f"{FS}/connections/{rid}"
    item = call(client, "GET", path, headers, 200)["items"][0]
    response = client.patch(
        path,
        headers={**headers, "If-Match": item["etag"]},
        json=[{"op": "replace", "path": "/auth", "value": item["auth"]}],
    )
    assert response.status_code == 400
    assert "masked" in response.json()["report"]["detailed-message"]
    store = client.app.state.ctx.store  # type: ignore[attr-defined]
    with store.tx() as tx:
        stored = tx.get("connections", (headers["x-gw-ims-org-id"], "prod"), rid)
    assert stored["auth"]["params"]["accessToken"] == "sk_test_123"


def test_unknown_connection_spec_is_1413(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(
        f"{FS}/connections",
        headers=headers,
        json={
            "name": "x",
            "connectionSpec": {"id": "00000000-0000-0000-0000-000000000000"},
            "auth": {"specName": "x", "params": {}},
        },
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("FLOW-1413-400")


def test_flow_validation(client: TestClient, headers: dict[str, str]) -> None:
    chain = _stripe_chain(client, headers)

    def refused(body: dict[str, Any], code: str) -> None:
        response = client.post(f"{FS}/flows", headers=headers, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["type"].endswith(f"FLOW-{code}-400"), response.text

    refused(_flow_body(chain, state="enabled"), "1410")
    refused(_flow_body(chain, flowSpec={"id": "nope", "version": "1.0"}), "1413")
    refused(_flow_body(chain, sourceConnectionIds=chain["source"]), "1400")
    for schedule in (
        {"startTime": "1", "frequency": "once", "interval": 15},
        {"startTime": "1", "frequency": "once", "backfill": True},
        {"startTime": "1", "frequency": "minute", "interval": 10},
        {"startTime": "1", "frequency": "hour", "interval": 0},
        {"startTime": "1", "frequency": "day"},
        {"startTime": "1", "frequency": "yearly", "interval": 1},
    ):
        refused(_flow_body(chain, scheduleParams=schedule), "1400")
    refused(
        _flow_body(
            chain,
            transformations=[
                {"name": "Mapper", "params": {"mappingId": chain["mapping"], "mappingVersion": 0}}
            ],
        ),
        "1400",
    )
    refused(
        _flow_body(
            chain,
            transformations=[
                {"name": "Mapping", "params": {"mappingId": chain["mapping"], "mappingVersion": 3}}
            ],
        ),
        "1412",
    )
    hourly = _flow_body(
        chain, scheduleParams={"startTime": 1710267858, "frequency": "hour", "interval": 1}
    )
    call(client, "POST", f"{FS}/flows", headers, 201, json=hourly)
    as_string = _flow_body(
        chain,
        name="string version",
        transformations=[
            {"name": "Mapping", "params": {"mappingId": chain["mapping"], "mappingVersion": "0"}}
        ],
    )
    call(client, "POST", f"{FS}/flows", headers, 201, json=as_string)


def test_flow_lifecycle(client: TestClient, headers: dict[str, str]) -> None:
    chain = _stripe_chain(client, headers)
    response = client.post(f"{FS}/flows", headers=headers, json=_flow_body(chain))
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"].endswith(created["id"])
    flow = call(client, "GET", f"{FS}/flows/{created['id']}", headers, 200)["items"][0]
    assert flow["state"] == "enabled"
    assert flow["etag"] == flow["version"] == created["etag"]
    assert flow["runs"] == f"/runs?property=flowId=={created['id']}"
    assert (
        flow["inheritedAttributes"]["sourceConnections"][0]["baseConnection"]["id"] == chain["base"]
    )
    assert "inletUrl" not in (flow.get("options") or {})
    in_use = client.delete(f"{FS}/connections/{chain['base']}", headers=headers)
    assert in_use.status_code == 400
    assert in_use.json()["type"].endswith("FLOW-1418-400")
    for op in ("disable", "DISABLE"):
        done = call(client, "POST", f"{FS}/flows/{created['id']}/action?op={op}", headers, 200)
        assert ETAG.match(done["etag"])
    flow = call(client, "GET", f"{FS}/flows/{created['id']}", headers, 200)["items"][0]
    assert flow["state"] == "disabled"
    call(client, "POST", f"{FS}/flows/{created['id']}/action?op=ENABLE&subOp=APPLY", headers, 200)
    assert (
        call(client, "GET", f"{FS}/flows/{created['id']}", headers, 200)["items"][0]["state"]
        == "enabled"
    )
    bad = client.post(f"{FS}/flows/{created['id']}/action?op=explode", headers=headers)
    assert bad.status_code == 400
    patched = call(
        client,
        "PATCH",
        f"{FS}/flows/{created['id']}",
        {**headers, "If-Match": flow["etag"]},
        412,
        json=[{"op": "replace", "path": "/name", "value": "x"}],
    )
    assert patched["status"] == 412
    daily = _patch_current(
        client,
        headers,
        f"{FS}/flows/{created['id']}",
        [
            {"op": "replace", "path": "/scheduleParams/frequency", "value": "day"},
            {"op": "replace", "path": "/scheduleParams/interval", "value": 1},
        ],
    )
    assert daily.status_code == 200, daily.text
    passed_start = _patch_current(
        client,
        headers,
        f"{FS}/flows/{created['id']}",
        [{"op": "replace", "path": "/scheduleParams/startTime", "value": "1900000000"}],
    )
    assert passed_start.status_code == 400
    assert "startTime" in passed_start.json()["report"]["detailed-message"]
    invalid = _patch_current(
        client,
        headers,
        f"{FS}/flows/{created['id']}",
        [{"op": "replace", "path": "/scheduleParams/frequency", "value": "minute"}],
    )
    assert invalid.status_code == 400
    assert client.delete(f"{FS}/flows/{created['id']}", headers=headers).status_code == 204
    assert client.get(f"{FS}/flows/{created['id']}", headers=headers).status_code == 404
    assert client.delete(f"{FS}/connections/{chain['base']}", headers=headers).status_code == 204


def test_inlets_are_assigned_by_flow_spec(client: TestClient, headers: dict[str, str]) -> None:
    cio = customer_io_chain(client, headers)
    flow = call(client, "GET", f"{FS}/flows/{cio['flow']}", headers, 200)["items"][0]
    inlet = flow["options"]["inletUrl"]
    assert re.match(r"^http://testserver/collection/[0-9a-f]{64}$", inlet)
    base = create_connection(
        client,
        headers,
        CAPILLARY,
        "Capillary base connection",
        "OAuth generic-rest-connector",
        {"clientId": "cid", "clientSecret": "csecret", "accessToken": "tok"},
    )
    source = create_source(client, headers, CAPILLARY, "Capillary Streaming", base=base)
    body: dict[str, Any] = {
        "name": "Capillary dataflow",
        "flowSpec": {"id": REST_FLOW, "version": "1.0"},
        "sourceConnectionIds": [source],
        "targetConnectionIds": [cio["target"]],
        "transformations": [
            {"name": "Mapping", "params": {"mappingId": cio["mapping"], "mappingVersion": "0"}}
        ],
        "scheduleParams": {"startTime": "1625040887", "frequency": "minute", "interval": 15},
    }
    batch_flow = call(client, "POST", f"{FS}/flows", headers, 201, json=body)["id"]
    got = call(client, "GET", f"{FS}/flows/{batch_flow}", headers, 200)["items"][0]
    assert "inletUrl" not in (got.get("options") or {})
    body.update(name="Capillary streaming", flowSpec={"id": STREAMING_FLOW, "version": "1.0"})
    del body["scheduleParams"]
    streaming = call(client, "POST", f"{FS}/flows", headers, 201, json=body)["id"]
    got = call(client, "GET", f"{FS}/flows/{streaming}", headers, 200)["items"][0]
    assert got["options"]["inletUrl"].startswith("http://testserver/collection/")
    assert got["options"]["inletUrl"] != inlet


def test_http_api_inlet_comes_from_its_base_connection(
    client: TestClient, headers: dict[str, str]
) -> None:
    schema = create_schema(client, headers, "http")
    dataset = create_dataset(client, headers, "http", schema["$id"])
    target = create_target(client, headers, dataset, schema["$id"])
    base = http_api_base(client, headers, "http", "http", authentication_required=False)
    params = call(client, "GET", f"{FS}/connections/{base}", headers, 200)["items"][0]["auth"][
        "params"
    ]
    assert re.match(r"^[0-9a-f]{64}$", params["inletId"])
    source = create_source(client, headers, HTTP_API, "http source", base=base)
    with_mapping = client.post(
        f"{FS}/flows",
        headers=headers,
        json=flow_body(HTTP_XDM_FLOW, "xdm flow", source, target, mapping="x"),
    )
    assert with_mapping.status_code == 400
    flow = create_flow(client, headers, HTTP_XDM_FLOW, "xdm flow", source, target)
    got = call(client, "GET", f"{FS}/flows/{flow}", headers, 200)["items"][0]
    assert got["options"]["inletUrl"] == params["inletUrl"]


def test_listing_filters_order_paging_count(client: TestClient, headers: dict[str, str]) -> None:
    chain = _stripe_chain(client, headers)
    ids = []
    for name in ("charlie", "alpha", "bravo"):
        ids.append(
            call(client, "POST", f"{FS}/flows", headers, 201, json=_flow_body(chain, name=name))[
                "id"
            ]
        )
    call(client, "POST", f"{FS}/flows/{ids[0]}/action?op=disable", headers, 200)

    def names(query: str) -> list[str]:
        return [
            i["name"] for i in call(client, "GET", f"{FS}/flows?{query}", headers, 200)["items"]
        ]

    assert names("property=name==alpha") == ["alpha"]
    assert sorted(names("property=name==alpha,bravo")) == ["alpha", "bravo"]
    assert sorted(names("property=name!=alpha")) == ["bravo", "charlie"]
    assert names("property=state==enabled&property=name!=alpha") == ["bravo"]
    assert len(names(f"property=sourceConnectionIds[]=={chain['source']}")) == 3
    assert names("property=sourceConnectionIds[]==none") == []
    assert len(names("property=inheritedAttributes.properties.isSourceFlow==true")) == 3
    assert names("orderby=name") == ["alpha", "bravo", "charlie"]
    assert names("orderby=-name") == ["charlie", "bravo", "alpha"]
    created = call(client, "GET", f"{FS}/flows/{ids[1]}", headers, 200)["items"][0]["createdAt"]
    assert "alpha" in names(f"property=createdAt>={created}")
    assert "alpha" in names(f"property=createdAt<={created}")
    assert "alpha" not in names(f"property=createdAt>{created}")
    assert "alpha" not in names(f"property=createdAt<{created}")
    assert len(names("property=createdAt>0")) == 3
    first = call(client, "GET", f"{FS}/flows?limit=2&orderby=name", headers, 200)
    assert [i["name"] for i in first["items"]] == ["alpha", "bravo"]
    href = first["_links"]["next"]["href"]
    assert "continuationToken=" in href and href.startswith("/flows?")
    second = call(client, "GET", f"{FS}{href}", headers, 200)
    assert [i["name"] for i in second["items"]] == ["charlie"]
    assert "_links" not in second
    assert call(client, "GET", f"{FS}/flows?count=true", headers, 200) == {"count": 3}
    both = client.get(f"{FS}/flows?count=true&limit=1", headers=headers)
    assert both.status_code == 400 and both.json()["type"].endswith("FLOW-1401-400")
    bad = client.get(f"{FS}/flows?property=name", headers=headers)
    assert bad.status_code == 400
    bad_order = client.get(f"{FS}/flows?orderby=-", headers=headers)
    assert bad_order.json()["type"].endswith("FLOW-1432-400")


def test_post_runs_only_for_once_flows(client: TestClient, headers: dict[str, str]) -> None:
    chain = _stripe_chain(client, headers)
    periodic = call(client, "POST", f"{FS}/flows", headers, 201, json=_flow_body(chain))["id"]
    refused = client.post(f"{FS}/runs", headers=headers, json={"flowId": periodic})
    assert refused.status_code == 400
    once = call(
        client,
        "POST",
        f"{FS}/flows",
        headers,
        201,
        json=_flow_body(
            chain, name="once", scheduleParams={"startTime": "1710267858", "frequency": "once"}
        ),
    )["id"]
    run = call(
        client,
        "POST",
        f"{FS}/runs",
        headers,
        201,
        json={
            "flowId": once,
            "params": {"startTime": 1710267858, "windowStartTime": 0, "windowEndTime": 1710267858},
        },
    )
    assert UUID.match(run["id"]) and ETAG.match(run["etag"])
    got = call(client, "GET", f"{FS}/runs/{run['id']}", headers, 200)["items"][0]
    assert got["flowId"] == once
    listed = call(client, "GET", f"{FS}/runs?property=flowId=={once}", headers, 200)["items"]
    assert run["id"] in [r["id"] for r in listed]
