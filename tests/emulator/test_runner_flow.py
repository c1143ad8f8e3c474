"""Issue 3's SFTP acceptance, over HTTP: a flow made through the emulator's API against a real
OpenSSH sshd ingests a CSV; its run's counts equal the CSV's rows, a malformed row is failed."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.embed import EmbeddedEmulator
from tests.emulator.conftest import platform_headers, token_for
from tests.support.sshd import Sshd, keygen

pytestmark = pytest.mark.sshd

SFTP_SPEC = {"id": "b7bf2577-4520-42c9-bae9-cad01560f7bc", "version": "1.0"}
DATA_LAKE = {"id": "c604ff05-7f1a-43c0-8e18-33bf874cb11c", "version": "1.0"}
CLOUD_STORAGE_TO_AEP = {"id": "9753525b-82c7-4dce-8a9b-5ccfce2b9876", "version": "1.0"}
XED = "application/vnd.adobe.xed-full+json;version=1"


def _client(emu: EmbeddedEmulator) -> httpx.Client:
    """A client for `emu` that sends client c's Platform headers on every request."""
    with httpx.Client(base_url=emu.base_url, timeout=10) as login:
        token = token_for(login, "c", "s", scope=None)
    headers = platform_headers(token, api_key="c")
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=10)


def _post(c: httpx.Client, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = c.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def _sftp_flow(c: httpx.Client, srv: Sshd, path: str) -> str:
    """The SFTP creation chain (aep-api.md §3.5): schema, dataset, base, source, target, mapping, flow."""
    schema = _post(
        c,
        "/data/foundation/schemaregistry/tenant/schemas",
        {
            "title": "Loyalty backfill",
            "type": "object",
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}],
        },
    )["$id"]
    dataset = _post(
        c,
        "/data/foundation/catalog/dataSets",
        {"name": "loyalty", "schemaRef": {"id": schema, "contentType": XED}},
    )[0].split("/")[-1]
    key = base64.b64encode(srv.client_key.read_bytes()).decode()
    base = _post(
        c,
        "/data/foundation/flowservice/connections",
        {
            "name": "landing zone",
            "connectionSpec": SFTP_SPEC,
            "auth": {
                "specName": "SSH PublicKey Authentication for sftp",
                "params": {"host": srv.host, "port": srv.port, "userName": srv.user, "privateKeyContent": key},
            },
        },
    )["id"]  # fmt: skip
    source = _post(
        c,
        "/data/foundation/flowservice/sourceConnections",
        {
            "name": "loyalty files",
            "baseConnectionId": base,
            "connectionSpec": SFTP_SPEC,
            "data": {"format": "delimited", "properties": {"columnDelimiter": ","}},
            "params": {"path": path, "type": "folder", "recursive": False},
        },
    )["id"]
    target = _post(
        c,
        "/data/foundation/flowservice/targetConnections",
        {
            "name": "loyalty dataset",
            "connectionSpec": DATA_LAKE,
            "data": {"format": "parquet_xdm", "schema": {"id": schema, "version": XED}},
            "params": {"dataSetId": dataset},
        },
    )["id"]
    mapping = _post(
        c,
        "/data/foundation/conversion/mappingSets",
        {
            "outputSchema": {"schemaRef": {"id": schema, "contentType": XED}},
            "mappings": [
                {"sourceType": "ATTRIBUTE", "source": "email", "destination": "personalEmail.address"},
                {"sourceType": "ATTRIBUTE", "source": "points", "destination": "_acme.points"},
            ],
        },
        status=200,
    )["id"]  # fmt: skip
    return _post(
        c,
        "/data/foundation/flowservice/flows",
        {
            "name": "loyalty backfill",
            "flowSpec": CLOUD_STORAGE_TO_AEP,
            "sourceConnectionIds": [source],
            "targetConnectionIds": [target],
            "transformations": [
                {"name": "Mapping", "params": {"mappingId": mapping, "mappingVersion": 0}}
            ],
            "scheduleParams": {"startTime": str(int(time.time())), "frequency": "once"},
        },
    )["id"]


def _finished_run(c: httpx.Client, flow_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = c.get(
            "/data/foundation/flowservice/runs", params={"property": f"flowId=={flow_id}"}
        ).json()["items"]
        if runs and runs[0]["metrics"]["statusSummary"]["status"] in ("success", "failed"):
            return runs[0]
        time.sleep(0.1)
    raise AssertionError(f"no finished run of flow {flow_id} within 20 s")


def test_sftp_flow_run_counts_equal_the_csv_rows(rsa_sshd: Sshd, tmp_path: Path):
    folder = rsa_sshd.landing / "capillary"
    folder.mkdir()
    rows = ["a@x.io,10", "b@x.io", "c@x.io,30", "d@x.io,40"]  # line 3 is malformed
    (folder / "loyalty.csv").write_text("email,points\n" + "\n".join(rows) + "\n")
    emu = EmbeddedEmulator(tmp_path / "aep", clients={"c": "s"}, known_hosts=rsa_sshd.known_hosts)
    with emu, _client(emu) as c:
        run = _finished_run(c, _sftp_flow(c, rsa_sshd, "capillary/*.csv"))
        assert run["metrics"]["statusSummary"]["status"] == "success"
        assert run["metrics"]["recordSummary"] == {
            "inputRecordCount": len(rows),
            "outputRecordCount": len(rows) - 1,
            "failedRecordCount": 1,
        }
        promotion = next(a for a in run["activities"] if a.get("targetInfo"))
        [batch_id] = promotion["targetInfo"][0]["reference"]["ids"]
        batch = c.get(f"/data/foundation/catalog/batches/{batch_id}").json()[batch_id]
        assert (batch["recordCount"], batch["failedRecordCount"]) == (3, 1)
        meta = c.get(
            f"/data/foundation/export/batches/{batch_id}/meta", params={"path": "row_errors"}
        ).json()
        [part] = meta["data"]
        detail = c.get(
            f"/data/foundation/export/batches/{batch_id}/meta", params={"path": part["name"]}
        ).text
        assert "CSV-FIELD-COUNT" in detail and "b@x.io" in detail


def test_sftp_flow_run_fails_on_a_changed_host_key(rsa_sshd: Sshd, tmp_path: Path):
    (rsa_sshd.landing / "loyalty.csv").write_text("email,points\na@x.io,1\n")
    keygen(tmp_path / "impostor", "ed25519")
    kind, blob = (tmp_path / "impostor.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{rsa_sshd.port} {kind} {blob}\n")
    emu = EmbeddedEmulator(tmp_path / "aep", clients={"c": "s"}, known_hosts=known)
    with emu, _client(emu) as c:
        run = _finished_run(c, _sftp_flow(c, rsa_sshd, "loyalty.csv"))
        summary = run["metrics"]["statusSummary"]
        assert summary["status"] == "failed"
        assert "host key mismatch" in str(summary)
        assert run["metrics"]["recordSummary"]["outputRecordCount"] == 0
