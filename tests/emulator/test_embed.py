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
from tests.emulator.conftest import platform_headers


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


def _login(base_url: str) -> dict[str, str]:
    """Platform headers (org ORG@AdobeOrg, sandbox prod) with a token for the default client."""
    token = _token(base_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).json()["access_token"]
    return platform_headers(token, org="ORG@AdobeOrg")


def _serve_args(port: int, state: Path, *extra: str) -> list[str]:
    """The command line of `aep-emulator serve` on `port` over `state`, run by this Python."""
    return [
        sys.executable,
        "-c",
        "from emulator.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--state",
        str(state),
        *extra,
    ]


def _spawn_serve(
    log: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `args` in the background, its stdout and stderr going to `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)


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
    proc = _spawn_serve(log, _serve_args(port, tmp_path / "st", "--client", "cli-client"), env)
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
    assert f"serving on http://127.0.0.1:{port} " in out
    assert "aep-emulator: stopped" in out
    assert "from-env" not in out


def test_serve_refuses_client_without_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AEP_EMULATOR_CLIENT_SECRET"}
    proc = subprocess.run(
        _serve_args(0, tmp_path / "st", "--client", "c"),
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"AEP_EMULATOR_CLIENT_SECRET" in proc.stderr


def test_inlet_urls_follow_the_port_when_the_state_dir_is_reopened(tmp_path: Path) -> None:
    with (
        EmbeddedEmulator(tmp_path / "aep", landing_delay_s=0.0) as first,
        httpx.Client(base_url=first.base_url) as http,
    ):
        flow = customer_io_chain(http, _login(first.base_url))["flow"]
    with (
        EmbeddedEmulator(tmp_path / "aep", landing_delay_s=0.0) as second,
        httpx.Client(base_url=second.base_url) as http,
    ):
        headers = _login(second.base_url)
        url = http.get(f"{FS}/flows/{flow}", headers=headers).json()["items"][0]["options"][
            "inletUrl"
        ]
        assert url.startswith(f"{second.base_url}/collection/")
        listed = http.get(f"{FS}/flows", headers=headers).json()["items"][0]
        assert listed["options"]["inletUrl"] == url
        sent = http.post(url, json={"data": {"identifiers": {"email": "a@example.com"}}})
        assert sent.status_code == 200


def _wait_profile(http: httpx.Client, headers: dict[str, str], email: str) -> None:
    params = {"schema.name": "_xdm.context.profile", "entityId": email, "entityIdNS": "email"}
    deadline = time.monotonic() + 20
    while (
        http.get("/data/core/ups/access/entities", headers=headers, params=params).status_code
        != 200
    ):
        assert time.monotonic() < deadline, f"{email} never landed"
        time.sleep(0.1)


def test_the_lock_holder_lands_what_another_process_accepted(tmp_path: Path) -> None:
    """`serve` holds the worker lock and lands a record an embedded emulator on the same state
    directory accepted; once `serve` exits, the embedded one takes the lock over."""
    state = tmp_path / "aep"
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = _spawn_serve(log, _serve_args(port, state, "--landing-delay", "0.2"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if (
                    _token(
                        f"http://127.0.0.1:{port}", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
                    ).status_code
                    == 200
                ):
                    break
            except httpx.ConnectError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with (
            EmbeddedEmulator(state, landing_delay_s=0.2) as emu,
            httpx.Client(base_url=emu.base_url) as http,
        ):
            headers = _login(emu.base_url)
            chain = customer_io_chain(http, headers)
            url = http.get(f"{FS}/flows/{chain['flow']}", headers=headers).json()["items"][0][
                "options"
            ]["inletUrl"]
            first = {"data": {"identifiers": {"email": "first@example.com"}}}
            assert http.post(url, json=first).status_code == 200
            _wait_profile(http, headers, "first@example.com")
            assert not emu.holds_worker_lock  # serve landed it
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            second = {"data": {"identifiers": {"email": "second@example.com"}}}
            assert http.post(url, json=second).status_code == 200
            _wait_profile(http, headers, "second@example.com")
            assert emu.holds_worker_lock
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
