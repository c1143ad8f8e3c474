"""Fixtures for emulator tests: an app under Starlette's TestClient, and authenticated headers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; plain httpx works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from emulator.app import create_app
from emulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig
from emulator.store import Store
from tests.emulator.openapi_support import Exchange, SpecChecker
from tests.support.sshd import Sshd, start_sshd

ORG = "0A7D42FC5DB9D3360A495FD3@AdobeOrg"
SANDBOX = "prod"


def token_for(
    client: TestClient | httpx.Client,
    client_id: str = DEFAULT_CLIENT_ID,
    secret: str = DEFAULT_CLIENT_SECRET,
    *,
    scope: str | None = "openid,AdobeID",
) -> str:
    """A fresh IMS token from the app behind `client` (no scope field when `scope` is None)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope is not None:
        form["scope"] = scope
    response = client.post("/ims/token/v3", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def platform_headers(
    token: str, *, org: str = ORG, sandbox: str = SANDBOX, api_key: str = DEFAULT_CLIENT_ID
) -> dict[str, str]:
    """The headers every Platform call carries."""
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": api_key,
        "x-gw-ims-org-id": org,
        "x-sandbox-name": sandbox,
    }


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    """A config over a fresh state directory, worker off (tests drive it)."""
    return EmulatorConfig(
        state_dir=tmp_path / "state", worker=False, landing_delay_s=0.0, faults=True
    )


@pytest.fixture
def client(config: EmulatorConfig) -> Iterator[TestClient]:
    """The app under TestClient, lifespan running.

    Every exchange on Adobe's paths is also checked against Adobe's OpenAPI spec (deviations
    table applied) when the test is done.
    """
    store = Store(config.state_dir)
    app = create_app(config, store=store)
    exchanges: list[Exchange] = []

    def record(response: Any) -> None:
        response.read()
        request = response.request
        exchanges.append(
            Exchange(
                request.method,
                str(request.url),
                dict(request.headers),
                request.read(),
                response.status_code,
                dict(response.headers),
                response.content,
            )
        )

    with TestClient(app) as test_client:
        test_client.event_hooks["response"] = [record]
        yield test_client
    store.close()
    checker = SpecChecker("http://testserver")
    problems = [p for ex in exchanges for p in checker.problems(ex)]
    assert problems == [], "\n".join(problems)


@pytest.fixture
def rsa_sshd(tmp_path: Path) -> Iterator[Sshd]:
    """OpenSSH sshd with an RSA (PEM) client key, the form AEP's SFTP source documents."""
    server = start_sshd(tmp_path / "sshd", client_key_type="rsa")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def headers(client: TestClient) -> dict[str, str]:
    """Authenticated Platform headers for ORG/prod."""
    return platform_headers(token_for(client))
