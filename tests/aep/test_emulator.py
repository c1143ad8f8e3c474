"""The client against the real emulator (embedded over loopback HTTP): headers, faults, a chain.

The emulator is the other side of the wire (it shares no code with `aep/`): these tests prove
the client's request forms are the ones the emulator, built from Adobe's contracts, accepts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aep import errors
from aep.names import description_tag, resource_name
from aep.platform import OpenPlatform, open_platform
from config.settings import PlatformSettings, Settings

ORG = "0A7D42FC5DB9D3360A495FD3@AdobeOrg"
SFTP_SPEC = "b7bf2577-4520-42c9-bae9-cad01560f7bc"
DATA_LAKE_SPEC = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
CLOUD_FLOW_SPEC = "9753525b-82c7-4dce-8a9b-5ccfce2b9876"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"
SFTP_PASSWORD = "pull-Password-0042"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[OpenPlatform]:
    settings = Settings(
        state_dir=tmp_path / "state",
        platform=PlatformSettings(mode="embedded", org_id=ORG, sandbox="prod", max_attempts=3),
    )
    with open_platform(settings, emulator_options={"faults": True}) as opened:
        yield opened


def _admin(opened: OpenPlatform, method: str, path: str, json: object = None) -> httpx.Response:
    response = httpx.request(method, opened.base_url + path, json=json, timeout=10)
    response.raise_for_status()
    return response


def test_embedded_mode_uses_generated_credentials(platform: OpenPlatform, tmp_path: Path) -> None:
    dev = platform.dev_credentials
    assert dev is not None and dev.path.parent == tmp_path / "state" / "credentials"
    assert platform.settings.platform.client_id == dev.client_id
    assert platform.client.schemas.tenant_id()
    assert platform.client.auth.renewals == 1


def test_the_emulator_checks_the_headers_the_client_sends(platform: OpenPlatform) -> None:
    url = platform.client.flows.url("/flows")
    for drop in ("Authorization", "x-api-key", "x-gw-ims-org-id"):
        headers = {
            "Authorization": f"Bearer {platform.client.auth.token()}",
            "x-api-key": platform.settings.platform.client_id,
            "x-gw-ims-org-id": ORG,
            "x-sandbox-name": "prod",
        }
        del headers[drop]
        assert httpx.get(url, headers=headers, timeout=10).status_code in (400, 401, 403)
    # the client's own calls pass the same checks
    assert list(platform.client.flows.flows.list()) == []


def test_a_bad_token_is_renewed_once(platform: OpenPlatform) -> None:
    client = platform.client
    client.schemas.tenant_id()
    # invalidate what the client holds, as an expired token would be
    client.auth._cached.token = "not-a-token"  # type: ignore[union-attr]
    assert client.schemas.tenant_id()
    assert client.auth.renewals == 2


def test_errors_from_the_emulator_carry_status_code_and_request_id(
    platform: OpenPlatform,
) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        platform.client.flows.flows.get("00000000-0000-0000-0000-000000000000")
    exc = info.value
    assert exc.status == 404
    assert exc.code and "404" in exc.code
    assert exc.request_id


def test_429_from_the_emulator_is_waited_out(platform: OpenPlatform) -> None:
    client = platform.client
    client.schemas.tenant_id()
    _admin(
        platform,
        "POST",
        "/_emulator/faults",
        {
            "method": "GET",
            "path": "/flowservice/flows$",
            "times": 1,
            "status": 429,
            "retry_after": 1,
        },
    )
    started = time.monotonic()
    assert list(client.flows.flows.list()) == []
    assert time.monotonic() - started >= 0.95


@pytest.mark.parametrize(
    "fault",
    [
        {"commit": True, "status": 500},
        {"drop": "after"},
    ],
    ids=["commit-then-500", "commit-then-drop"],
)
def test_a_lost_create_leaves_one_resource(
    platform: OpenPlatform, fault: dict[str, object]
) -> None:
    client = platform.client
    name = resource_name("aep-bridge", "lost.create")
    body = {
        "connectionSpec": {"id": SFTP_SPEC, "version": "1.0"},
        "auth": {
            "specName": "Basic Authentication for sftp",
            "params": {
                "host": "127.0.0.1",
                "port": 22,
                "userName": "aep",
                "password": SFTP_PASSWORD,
            },
        },
    }
    _admin(
        platform,
        "POST",
        "/_emulator/faults",
        {"method": "POST", "path": "/flowservice/connections$", "times": 1, **fault},
    )
    result = client.flows.connections.ensure(name, body)
    assert result.recovered
    named = [c.id for c in client.flows.connections.list(properties=[f"name=={name}"])]
    assert named == [result.id]


def test_the_create_chain_of_an_sftp_source(platform: OpenPlatform) -> None:
    c = platform.client
    prefix = "aep-bridge"
    tenant = c.schemas.tenant_id()
    schema = c.schemas.ensure_schema(
        {
            "title": resource_name(prefix, "capillary.profile"),
            "type": "object",
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}],
            "meta:immutableTags": ["union"],
        }
    )
    assert schema.created and tenant in schema.id
    again = c.schemas.ensure_schema(
        {
            "title": resource_name(prefix, "capillary.profile"),
            "type": "object",
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}],
        }
    )
    assert again.id == schema.id and not again.created

    dataset = c.catalog.ensure_dataset(
        resource_name(prefix, "capillary.profile"),
        {
            "schemaRef": {"id": schema.id, "contentType": XED_FULL},
            "fileDescription": {
                "persisted": True,
                "containerFormat": "parquet",
                "format": "parquet",
            },
        },
    )
    assert c.catalog.get_dataset(dataset.id).name == resource_name(prefix, "capillary.profile")

    base = c.flows.connections.ensure(
        resource_name(prefix, "sftp"),
        {
            "connectionSpec": {"id": SFTP_SPEC, "version": "1.0"},
            "auth": {
                "specName": "Basic Authentication for sftp",
                "params": {
                    "host": "127.0.0.1",
                    "port": 2222,
                    "userName": "aep",
                    "password": SFTP_PASSWORD,
                    "folderPath": "/landing",
                },
            },
        },
    )
    source = c.flows.source_connections.ensure(
        resource_name(prefix, "sftp.capillary.profile"),
        {
            "baseConnectionId": base.id,
            "connectionSpec": {"id": SFTP_SPEC, "version": "1.0"},
            "data": {
                "format": "delimited",
                "properties": {"columnDelimiter": ",", "encoding": "UTF-8"},
            },
            "params": {"path": "/landing/profiles.csv", "type": "file"},
        },
    )
    target = c.flows.target_connections.ensure(
        resource_name(prefix, "lake.capillary.profile"),
        {
            "connectionSpec": {"id": DATA_LAKE_SPEC, "version": "1.0"},
            "data": {"format": "parquet_xdm", "schema": {"id": schema.id, "version": XED_FULL}},
            "params": {"dataSetId": dataset.id},
        },
    )
    tag = description_tag(prefix, "capillary.profile")
    mapping_body = {
        "version": 0,
        "xdmSchema": schema.id,
        "xdmVersion": "1.0",
        "id": None,
        "mappings": [
            {"sourceType": "ATTRIBUTE", "source": "email", "destination": "personalEmail.address"}
        ],
    }
    assert c.mappings.validate(mapping_body).validationResponse is not None
    mapping = c.mappings.ensure_mapping_set(tag, mapping_body)
    assert c.mappings.find_mapping_set(tag=tag) == mapping.id
    assert c.mappings.find_mapping_set(tag=tag, recorded_id=mapping.id) == mapping.id

    from aep import deviations

    flow = c.flows.flows.ensure(
        resource_name(prefix, "flow.capillary.profile"),
        {
            "flowSpec": {"id": CLOUD_FLOW_SPEC, "version": "1.0"},
            "sourceConnectionIds": [source.id],
            "targetConnectionIds": [target.id],
            "transformations": [
                {
                    "name": "Mapping",
                    "params": {
                        "mappingId": mapping.id,
                        "mappingVersion": deviations.mapping_version(0),
                    },
                }
            ],
            "scheduleParams": {
                "startTime": deviations.schedule_start_time(int(time.time()) + 3600),
                "frequency": "day",
                "interval": 1,
            },
        },
    )
    got = c.flows.flows.get(flow.id)
    assert got.sourceConnectionIds == [source.id] and got.etag

    from aep.flows import patch

    patched = c.flows.flows.patch(flow.id, got.etag, [patch("add", "/description", "nightly")])
    assert patched.etag != got.etag
    with pytest.raises(errors.PreconditionFailed):
        c.flows.flows.patch(flow.id, got.etag, [patch("replace", "/description", "stale")])
    c.flows.disable_flow(flow.id)
    assert c.flows.flows.get(flow.id).state == "disabled"
    c.flows.enable_flow(flow.id)
    assert c.flows.flows.get(flow.id).state == "enabled"
    assert isinstance(list(c.flows.runs(flow.id)), list)
    # everything is found again by name: a second pass creates nothing
    assert not c.flows.flows.ensure(resource_name(prefix, "flow.capillary.profile"), {}).created
    # and the password never left in a support bundle
    assert SFTP_PASSWORD not in str(c.capture.bundle().asdict())


HTTP_API_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
HTTP_API_FLOW_SPEC = "d8a6f005-7eaf-4153-983e-e8574508b877"


def test_a_streamed_profile_lands_in_the_dataset_and_profile(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        platform=PlatformSettings(mode="embedded", org_id=ORG, sandbox="prod"),
    )
    with open_platform(settings, emulator_options={"landing_delay_s": 0.2}) as opened:
        c = opened.client
        schema = c.schemas.create_schema(
            {
                "title": "aep-bridge-stream.profile",
                "type": "object",
                "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}],
                "meta:immutableTags": ["union"],
            }
        )
        assert c.schemas.primary_identity(schema.id, "/personalEmail/address", "Email")
        dataset_id = c.catalog.create_dataset(
            {
                "name": "aep-bridge-stream.profile",
                "schemaRef": {"id": schema.id, "contentType": XED_FULL},
                "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]},
            }
        )
        base = c.flows.connections.create(
            {
                "name": "aep-bridge-http",
                "connectionSpec": {"id": HTTP_API_SPEC, "version": "1.0"},
                "auth": {
                    "specName": "Streaming Connection",
                    "params": {
                        "dataType": "xdm",
                        "name": "aep-bridge-http",
                        "authenticationRequired": False,
                    },
                },
            }
        )
        inlet_url = c.flows.connections.get(base.id).auth["params"]["inletUrl"]  # type: ignore[index]
        source = c.flows.source_connections.create(
            {
                "name": "aep-bridge-http.source",
                "baseConnectionId": base.id,
                "connectionSpec": {"id": HTTP_API_SPEC, "version": "1.0"},
            }
        )
        target = c.flows.target_connections.create(
            {
                "name": "aep-bridge-http.target",
                "connectionSpec": {"id": DATA_LAKE_SPEC, "version": "1.0"},
                "data": {"format": "parquet_xdm", "schema": {"id": schema.id, "version": XED_FULL}},
                "params": {"dataSetId": dataset_id},
            }
        )
        flow = c.flows.flows.create(
            {
                "name": "aep-bridge-http.flow",
                "flowSpec": {"id": HTTP_API_FLOW_SPEC, "version": "1.0"},
                "sourceConnectionIds": [source.id],
                "targetConnectionIds": [target.id],
            }
        )
        ref = {"id": schema.id, "contentType": XED_FULL}
        message = {
            "header": {
                "schemaRef": ref,
                "imsOrgId": ORG,
                "datasetId": dataset_id,
                "flowId": flow.id,
            },
            "body": {
                "xdmMeta": {"schemaRef": ref},
                "xdmEntity": {
                    "identityMap": {"email": [{"id": "jane@example.com", "primary": True}]},
                    "personalEmail": {"address": "jane@example.com"},
                },
            },
        }
        receipt = c.streaming.send(inlet_url, message, sync_validation=True)
        assert receipt.xactionId and receipt.inletId == inlet_url.rsplit("/", 1)[-1]
        batch = c.streaming.send_batch(inlet_url, [message, {"header": {}, "body": {}}])
        assert batch.failed == [1]
        deadline = time.monotonic() + 20
        entity = None
        while time.monotonic() < deadline:
            entity = c.profiles.get_entity("jane@example.com", "email")
            if entity is not None and list(c.catalog.batches(dataset_id)):
                break
            time.sleep(0.2)
        assert entity is not None and dataset_id in entity.sources
        batches = list(c.catalog.batches(dataset_id))
        assert sum(b.recordCount or 0 for b in batches) >= 2
        assert c.profiles.get_entity("nobody@example.com", "email") is None


def test_a_short_lived_token_is_renewed_ahead_of_expiry(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        platform=PlatformSettings(mode="embedded", org_id=ORG, sandbox="prod"),
    )
    with open_platform(settings, emulator_options={"token_lifetime_s": 2}) as opened:
        c = opened.client
        calls = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            c.schemas.tenant_id()
            calls += 1
            time.sleep(0.1)
        exchanges = c.capture.exchanges()
        assert calls + c.auth.renewals == len(exchanges)  # all kept: none fell out of the ring
        # renewed before the emulator ever refused the token: no 401 on the wire
        assert c.auth.renewals >= 2
        assert {x.status for x in exchanges} == {200}


def test_http_mode_against_aep_emulator_serve(tmp_path: Path) -> None:
    """`aep-emulator serve` in its own process; the client registers its dev credentials."""
    import os
    import subprocess
    import sys

    from tests.aep.server import free_port

    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AEP_")}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "aep-emulator"),
            "serve",
            "--port",
            str(port),
            "--state",
            str(tmp_path / "emu"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environ,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/_emulator/state", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        settings = Settings(
            state_dir=tmp_path / "client",
            platform=PlatformSettings(
                mode="http", gateway_url=url, ims_url=url, inlet_url=url, org_id=ORG, sandbox="prod"
            ),
        )
        with open_platform(settings) as opened:
            assert opened.dev_credentials is not None
            assert opened.client.schemas.tenant_id()
            assert opened.client.auth.renewals == 1
        # the state dump masks the registered secret
        state = httpx.get(url + "/_emulator/state", timeout=5).text
        assert opened.dev_credentials.client_secret not in state
    finally:
        proc.terminate()
        proc.wait(timeout=30)
