"""Batch dataflow runs end to end over real HTTP: SFTP against OpenSSH sshd, Stripe fixtures,
`POST /runs`, injected run failure, explore."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.embed import EmbeddedEmulator
from tests.emulator.chains import (
    CATALOG,
    CLOUD_FLOW,
    FS,
    REST_FLOW,
    SFTP,
    call,
    create_connection,
    create_dataset,
    create_flow,
    create_mapping,
    create_schema,
    create_source,
    create_target,
    stripe_base,
    stripe_source,
)
from tests.emulator.conftest import ORG, SANDBOX, platform_headers, token_for
from tests.emulator.openapi_support import RecordingTransport, SpecChecker
from tests.support.sshd import Sshd

EXPORT = "/data/foundation/export"
CSV = "loyalty_id,email,points\nL1,ana@example.com,10\nL2,bo@example.com,20\nL3,cy@example.com\nL4,dee@example.com,40\n"
PROPS: dict[str, Any] = {
    "loyaltyId": {"type": "string"},
    "personalEmail": {"type": "object", "properties": {"address": {"type": "string"}}},
    "points": {"type": "integer"},
}


@pytest.fixture
def session(tmp_path: Path, rsa_sshd: Sshd) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An embedded emulator (faults on, fast landings) and an authenticated client for it.

    Every exchange on Adobe's paths is checked against Adobe's spec when the test is done.
    """
    transport = RecordingTransport()
    with (
        EmbeddedEmulator(
            tmp_path / "aep", known_hosts=rsa_sshd.known_hosts, faults=True, landing_delay_s=0.0
        ) as emu,
        httpx.Client(base_url=emu.base_url, timeout=30, transport=transport) as http,
    ):
        yield http, platform_headers(token_for(http, scope="openid"))
        checker = SpecChecker(emu.base_url)
        problems = [p for ex in transport.exchanges for p in checker.problems(ex)]
        assert problems == [], "\n".join(problems)


def wait_run(
    http: httpx.Client, headers: dict[str, str], flow: str, count: int = 1, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The flow's runs once `count` of them have finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = call(
            http, "GET", f"{FS}/runs?property=flowId=={flow}&orderby=createdAt", headers, 200
        )["items"]
        done = [r for r in runs if r["metrics"]["statusSummary"]["status"] in ("success", "failed")]
        if len(done) >= count:
            return done
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)


def _run_body(flow: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "flowId": flow,
        "params": {"startTime": now, "windowStartTime": now - 3600, "windowEndTime": now},
    }


def _sftp_flow(
    http: httpx.Client,
    headers: dict[str, str],
    server: Sshd,
    folder: str,
    options: dict[str, Any] | None = None,
    *,
    first_file: str = "loyalty.csv",
) -> dict[str, str]:
    """Land CSV as `folder/first_file` on the sshd, then a once-flow reading `folder/*.csv`."""
    (server.landing / folder).mkdir()
    (server.landing / folder / first_file).write_text(CSV)
    schema = create_schema(http, headers, f"Loyalty {folder}", properties=PROPS)
    dataset = create_dataset(http, headers, f"loyalty-{folder}", schema["$id"])
    key = base64.b64encode(server.client_key.read_bytes()).decode()
    base = create_connection(
        http,
        headers,
        SFTP,
        f"sftp {folder}",
        "SSH PublicKey Authentication for sftp",
        {
            "host": server.host,
            "port": server.port,
            "userName": server.user,
            "privateKeyContent": key,
        },
    )
    source = create_source(
        http,
        headers,
        SFTP,
        f"csv {folder}",
        base=base,
        data={"format": "delimited", "properties": {"columnDelimiter": ",", "encoding": "UTF-8"}},
        params={"path": f"{server.landing}/{folder}/*.csv", "type": "folder"},
    )
    target = create_target(http, headers, dataset, schema["$id"])
    mapping = create_mapping(
        http,
        headers,
        schema["$id"],
        [("loyalty_id", "loyaltyId"), ("email", "personalEmail.address"), ("points", "points")],
    )
    flow = create_flow(
        http,
        headers,
        CLOUD_FLOW,
        f"backfill {folder}",
        source,
        target,
        mapping=mapping,
        schedule={"startTime": str(int(time.time())), "frequency": "once"},
        options=options,
    )
    return {"flow": flow, "dataset": dataset, "base": base}


def test_sftp_flow_ingests_csv_and_counts_the_malformed_row(
    session: tuple[httpx.Client, dict[str, str]], rsa_sshd: Sshd
) -> None:
    http, headers = session
    chain = _sftp_flow(http, headers, rsa_sshd, "first")
    [run] = wait_run(http, headers, chain["flow"])
    assert run["metrics"]["statusSummary"]["status"] == "success", run
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 4,
        "outputRecordCount": 3,
        "failedRecordCount": 1,
    }
    promotion = next(a for a in run["activities"] if a["id"] == "promotionActivity")
    [batch_id] = promotion["targetInfo"][0]["reference"]["ids"]
    batch = call(http, "GET", f"{CATALOG}/batches/{batch_id}", headers, 200)[batch_id]
    assert (batch["recordCount"], batch["failedRecordCount"]) == (3, 1)
    assert batch["relatedObjects"] == [{"type": "dataSet", "id": chain["dataset"]}]
    listing = call(http, "GET", f"{EXPORT}/batches/{batch_id}/meta?path=row_errors", headers, 200)
    raw = http.get(listing["data"][0]["_links"]["self"]["href"], headers=headers).text
    [error] = [json.loads(line) for line in raw.splitlines()]
    assert error["line"] == 4 and error["file"].endswith("loyalty.csv")
    flow = call(http, "GET", f"{FS}/flows/{chain['flow']}", headers, 200)["items"][0]
    assert flow["lastRunDetails"]["id"] == run["id"]
    assert flow["lastRunDetails"]["state"] == "success"

    no_window = http.post(f"{FS}/runs", headers=headers, json={"flowId": chain["flow"]})
    assert no_window.status_code == 400
    assert "windowStartTime" in no_window.json()["report"]["detailed-message"]
    time.sleep(1.1)  # a later mtime than the first file
    (rsa_sshd.landing / "first" / "more.csv").write_text(
        "loyalty_id,email,points\nL9,z@example.com,9\n"
    )
    call(http, "POST", f"{FS}/runs", headers, 201, json=_run_body(chain["flow"]))
    second = wait_run(http, headers, chain["flow"], count=2)[-1]
    assert second["metrics"]["recordSummary"]["inputRecordCount"] == 1

    fail = http.post(
        "/_emulator/runs/fail",
        json={"flowId": chain["flow"], "org": ORG, "sandbox": SANDBOX, "message": "disk on fire"},
    )
    assert fail.status_code == 201
    call(http, "POST", f"{FS}/runs", headers, 201, json=_run_body(chain["flow"]))
    third = wait_run(http, headers, chain["flow"], count=3)[-1]
    assert third["metrics"]["statusSummary"]["status"] == "failed"
    assert "disk on fire" in third["metrics"]["statusSummary"]["errors"][0]["message"]


def test_sftp_explore_and_unreachable_host_fails_the_run(
    session: tuple[httpx.Client, dict[str, str]], rsa_sshd: Sshd
) -> None:
    http, headers = session
    chain = _sftp_flow(http, headers, rsa_sshd, "exp", first_file="a.csv")
    items = call(
        http,
        "GET",
        f"{FS}/connections/{chain['base']}/explore?objectType=folder&object={rsa_sshd.landing}/exp",
        headers,
        200,
    )
    assert [i["name"] for i in items] == ["a.csv"]
    file_query = (
        f"objectType=file&object={rsa_sshd.landing}/exp/a.csv&fileType=delimited&preview=true"
    )
    inspected = call(
        http, "GET", f"{FS}/connections/{chain['base']}/explore?{file_query}", headers, 200
    )
    assert [c["name"] for c in inspected["schema"]["columns"]] == ["loyalty_id", "email", "points"]
    assert inspected["data"][0]["loyalty_id"] == "L1"
    rsa_sshd.stop()
    (rsa_sshd.landing / "exp" / "b.csv").write_text(CSV)
    call(http, "POST", f"{FS}/runs", headers, 201, json=_run_body(chain["flow"]))
    last = wait_run(http, headers, chain["flow"], count=2)[-1]
    assert last["metrics"]["statusSummary"]["status"] == "failed"


def test_stripe_flow_runs_over_fixtures_and_explore(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, headers = session
    base = stripe_base(http, headers, "Stripe base connection", "sk_test_x")
    params = base64.b64encode(b'{"resourcePath":"charges"}').decode().replace("=", "%3D")
    explored = call(
        http,
        "GET",
        f"{FS}/connections/{base}/explore?objectType=rest&object=json"
        f"&fileType=json&preview=false&sourceParams={params}",
        headers,
        200,
    )
    assert explored["format"] == "hierarchical"
    assert "data" in explored["schema"]["properties"]
    source = stripe_source(http, headers, base, "charges", "charges")
    schema = create_schema(
        http,
        headers,
        "Charges",
        identity=None,
        union=False,
        properties={"chargeId": {"type": "string"}},
    )
    dataset = create_dataset(http, headers, "charges", schema["$id"])
    target = create_target(http, headers, dataset, schema["$id"])
    mapping = create_mapping(http, headers, schema["$id"], [("data.id", "chargeId")])
    flow = create_flow(
        http,
        headers,
        REST_FLOW,
        "Stripe Connector Flow Generic Rest",
        source,
        target,
        mapping=mapping,
        schedule={"startTime": "1710267858", "frequency": "once"},
    )
    [run] = wait_run(http, headers, flow)
    assert run["metrics"]["statusSummary"]["status"] == "success", run
    fixture = Path(__file__).parents[2] / "emulator/runner/fixtures/stripe/v1/charges.jsonl"
    expected = len(fixture.read_text().splitlines())
    assert run["metrics"]["recordSummary"]["outputRecordCount"] == expected
    preview = call(http, "GET", f"{EXPORT}/datasets/{dataset}/preview", headers, 200)["data"]
    assert {r["chargeId"] for r in preview} == {
        json.loads(line)["id"] for line in fixture.read_text().splitlines()
    }


def test_partial_ingestion_threshold_fails_the_run(
    session: tuple[httpx.Client, dict[str, str]], rsa_sshd: Sshd
) -> None:
    http, headers = session
    options = {"errorDiagnosticsEnabled": True, "partialIngestionPercent": 5}
    chain = _sftp_flow(http, headers, rsa_sshd, "strict", options)
    [run] = wait_run(http, headers, chain["flow"])
    summary = run["metrics"]["statusSummary"]
    assert summary["status"] == "failed"
    assert summary["errors"][0]["code"] == "INGEST-1212-400"
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 4,
        "outputRecordCount": 0,
        "failedRecordCount": 1,
    }
    batches = call(http, "GET", f"{CATALOG}/batches?dataSet={chain['dataset']}", headers, 200)
    [batch] = batches.values()
    assert batch["status"] == "failed" and batch["recordCount"] == 0
    preview = call(http, "GET", f"{EXPORT}/datasets/{chain['dataset']}/preview", headers, 200)
    assert preview["data"] == []


def test_clock_scale_runs_minute_schedules_fast(tmp_path: Path) -> None:
    with (
        EmbeddedEmulator(tmp_path / "aep", clock_scale=3600) as emu,
        httpx.Client(base_url=emu.base_url, timeout=30) as http,
    ):
        headers = platform_headers(token_for(http, scope=None))
        base = stripe_base(http, headers, "Stripe", "sk")
        source = stripe_source(http, headers, base, "refunds", "refunds")
        schema = create_schema(http, headers, "Refunds", identity=None, union=False)
        dataset = create_dataset(http, headers, "refunds", schema["$id"])
        target = create_target(http, headers, dataset, schema["$id"])
        flow = create_flow(
            http,
            headers,
            REST_FLOW,
            "refunds every 15 minutes",
            source,
            target,
            schedule={"startTime": "1710267858", "frequency": "minute", "interval": 15},
        )
        runs = wait_run(http, headers, flow, count=3, timeout_s=20)
        assert all(r["metrics"]["statusSummary"]["status"] == "success" for r in runs)
        call(http, "POST", f"{FS}/flows/{flow}/action?op=disable", headers, 200)
        time.sleep(0.6)
        before = len(wait_run(http, headers, flow, count=3))
        time.sleep(1.0)
        assert len(wait_run(http, headers, flow, count=3)) == before
