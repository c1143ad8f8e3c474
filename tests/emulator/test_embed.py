"""EmbeddedEmulator over real HTTP, and `aep-emulator serve` exiting 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from emulator.embed import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmbeddedEmulator
from tests.emulator.chains import FS, customer_io_chain


def _token(base_url: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "openid",
        },
    )


def test_embedded_serves_on_a_free_loopback_port_and_stops(tmp_path: Path) -> None:
    with EmbeddedEmulator(tmp_path / "aep", clients={"me": "s3cret"}) as emu:
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert _token(emu.base_url, "me", "s3cret").status_code == 200
        assert _token(emu.base_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).status_code == 401
        base = emu.base_url
    try:
        httpx.get(f"{base}/ims/token/v3", timeout=1)
        raise AssertionError("still serving after stop")
    except httpx.ConnectError:
        pass


def test_two_embedded_instances_share_one_state_dir(tmp_path: Path) -> None:
    with EmbeddedEmulator(tmp_path / "aep") as one, EmbeddedEmulator(tmp_path / "aep") as two:
        added = httpx.post(
            f"{one.base_url}/_emulator/clients",
            json={"client_id": "late", "client_secret": "joiner"},
        )
        assert added.status_code == 201
        assert _token(two.base_url, "late", "joiner").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_exits_zero_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "AEP_EMULATOR_CLIENT_SECRET": "from-env"}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from emulator.cli import main; main()",
                "serve",
                "--port",
                str(port),
                "--state",
                str(tmp_path / "st"),
                "--client",
                "cli-client",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = _token(f"http://127.0.0.1:{port}", "cli-client", "from-env")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert "aep-emulator: stopped" in out
    assert "from-env" not in out


def test_serve_refuses_client_without_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AEP_EMULATOR_CLIENT_SECRET"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from emulator.cli import main; main()",
            "serve",
            "--port",
            "0",
            "--state",
            str(tmp_path / "st"),
            "--client",
            "c",
        ],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"AEP_EMULATOR_CLIENT_SECRET" in proc.stderr


def test_inlet_urls_follow_the_port_when_the_state_dir_is_reopened(tmp_path: Path) -> None:
    def login(base_url: str) -> dict[str, str]:
        token = _token(base_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).json()["access_token"]
        return {
            "Authorization": f"Bearer {token}",
            "x-api-key": DEFAULT_CLIENT_ID,
            "x-gw-ims-org-id": "ORG@AdobeOrg",
            "x-sandbox-name": "prod",
        }

    with (
        EmbeddedEmulator(tmp_path / "aep", landing_delay_s=0.0) as first,
        httpx.Client(base_url=first.base_url) as http,
    ):
        flow = customer_io_chain(http, login(first.base_url))["flow"]
    with (
        EmbeddedEmulator(tmp_path / "aep", landing_delay_s=0.0) as second,
        httpx.Client(base_url=second.base_url) as http,
    ):
        headers = login(second.base_url)
        url = http.get(f"{FS}/flows/{flow}", headers=headers).json()["items"][0]["options"][
            "inletUrl"
        ]
        assert url.startswith(f"{second.base_url}/collection/")
        listed = http.get(f"{FS}/flows", headers=headers).json()["items"][0]
        assert listed["options"]["inletUrl"] == url
        sent = http.post(url, json={"data": {"identifiers": {"email": "a@example.com"}}})
        assert sent.status_code == 200
