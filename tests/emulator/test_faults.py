"""Fault injection and the worker lock, over real HTTP (uvicorn + httpx)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulator.embed import EmbeddedEmulator
from tests.emulator.chains import CUSTOMER_IO, FS, call
from tests.emulator.conftest import platform_headers, token_for

SOURCES = f"{FS}/sourceConnections"


def _login(http: httpx.Client) -> dict[str, str]:
    return platform_headers(token_for(http, scope=None))


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An embedded emulator with faults enabled and an authenticated client."""
    with (
        EmbeddedEmulator(tmp_path / "aep", faults=True) as emu,
        httpx.Client(base_url=emu.base_url, timeout=10) as http,
    ):
        yield http, _login(http)


def _source(name: str) -> dict[str, object]:
    return {
        "name": name,
        "connectionSpec": {"id": CUSTOMER_IO, "version": "1.0"},
        "data": {"format": "json"},
    }


def _count(http: httpx.Client, headers: dict[str, str], name: str) -> int:
    body = call(http, "GET", f"{SOURCES}?property=name=={name}&count=true", headers, 200)
    return int(body["count"])


def _arm(http: httpx.Client, **spec: object) -> None:
    assert http.post("/_emulator/faults", json=spec).status_code == 201


def test_status_n_times_with_retry_after(faulty: tuple[httpx.Client, dict[str, str]]) -> None:
    http, headers = faulty
    _arm(http, method="GET", path=r"/flowservice/flows$", times=2, status=429, retry_after=3)
    for _ in range(2):
        response = http.get(f"{FS}/flows", headers=headers)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
    assert http.get(f"{FS}/flows", headers=headers).status_code == 200
    assert http.get("/_emulator/faults").json() == []


def test_latency(faulty: tuple[httpx.Client, dict[str, str]]) -> None:
    http, headers = faulty
    _arm(http, path=r"/flows$", latency_ms=300)
    started = time.monotonic()
    assert http.get(f"{FS}/flows", headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_before_handling_creates_nothing(faulty: tuple[httpx.Client, dict[str, str]]) -> None:
    http, headers = faulty
    _arm(http, method="POST", path=r"/sourceConnections$", drop="before")
    with pytest.raises(httpx.TransportError):
        http.post(SOURCES, headers=headers, json=_source("lost-before"))
    assert _count(http, headers, "lost-before") == 0


def test_drop_after_commit_leaves_the_resource(faulty: tuple[httpx.Client, dict[str, str]]) -> None:
    http, headers = faulty
    _arm(http, method="POST", path=r"/sourceConnections$", drop="after")
    with pytest.raises(httpx.TransportError):
        http.post(SOURCES, headers=headers, json=_source("lost-after"))
    assert _count(http, headers, "lost-after") == 1


def test_commit_then_answer_a_status(faulty: tuple[httpx.Client, dict[str, str]]) -> None:
    http, headers = faulty
    _arm(http, method="POST", path=r"/sourceConnections$", status=502, commit=True)
    response = http.post(SOURCES, headers=headers, json=_source("committed"))
    assert response.status_code == 502
    assert _count(http, headers, "committed") == 1
    assert http.delete("/_emulator/faults").status_code == 204


def test_faults_are_off_unless_enabled(tmp_path: Path) -> None:
    with EmbeddedEmulator(tmp_path / "aep") as emu, httpx.Client(base_url=emu.base_url) as http:
        assert http.post("/_emulator/faults", json={"status": 500}).status_code == 404
        assert http.get("/_emulator/state").status_code == 200
        bad = http.post("/_emulator/clients", json={"client_id": ""})
        assert bad.status_code == 400


def test_only_one_process_holds_the_worker_lock(tmp_path: Path) -> None:
    with EmbeddedEmulator(tmp_path / "aep") as one:
        time.sleep(0.3)
        with EmbeddedEmulator(tmp_path / "aep") as two:
            time.sleep(0.3)
            holders = [e for e in (one, two) if e.holds_worker_lock]
            assert holders == [one]
        assert one.holds_worker_lock
