"""Fixtures of the client tests: the loopback test server and a wired send path."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from aep.auth import IMSAuth
from aep.client import PlatformClient
from aep.http import Http, HttpConfig, RetryPolicy
from aep.redact import Redactor
from config.settings import PlatformSettings, Settings
from tests.aep.server import State, TestServer

CLIENT_ID = "test-client"
CLIENT_SECRET = "cs-Very-Secret-4711"
ORG = "0A7D42FC5DB9D3360A495FD3@AdobeOrg"
SANDBOX = "dev1"


@pytest.fixture
def server() -> Iterator[TestServer]:
    """The test Platform on a free loopback port, with one registered client."""
    srv = TestServer(State(clients={CLIENT_ID: CLIENT_SECRET})).start()
    try:
        yield srv
    finally:
        srv.stop()


MakeHttp = Callable[..., Http]


@pytest.fixture
def make_http(server: TestServer) -> Iterator[MakeHttp]:
    """Build a send path against `server` (closed after the test)."""
    made: list[Http] = []

    def make(
        *,
        secret: str = CLIENT_SECRET,
        retry: RetryPolicy | None = None,
        extra_secrets: tuple[str, ...] = (),
        timeout_s: float = 5.0,
    ) -> Http:
        config = HttpConfig(
            gateway_url=server.base_url,
            ims_url=server.base_url,
            inlet_url=server.base_url,
            org_id=ORG,
            sandbox=SANDBOX,
            client_id=CLIENT_ID,
            timeout_s=timeout_s,
            retry=retry
            or RetryPolicy(
                max_attempts=4,
                deadline_s=20,
                backoff_initial_s=0.05,
                backoff_max_s=0.2,
                jitter_s=0.05,
            ),
        )
        http = Http(config, redactor=Redactor([secret, *extra_secrets]))
        http.auth = IMSAuth(
            client_id=CLIENT_ID,
            client_secret=secret,
            scopes=["openid", "AdobeID"],
            fetch=http.fetch_token,
        )
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


@pytest.fixture
def make_client(server: TestServer) -> Iterator[Callable[..., PlatformClient]]:
    """Build a `PlatformClient` from settings pointing at `server`."""
    made: list[PlatformClient] = []

    def make(**platform: object) -> PlatformClient:
        settings = Settings(
            platform=PlatformSettings(
                mode="http",
                gateway_url=server.base_url,
                ims_url=server.base_url,
                inlet_url=server.base_url,
                org_id=ORG,
                sandbox=SANDBOX,
                client_id=CLIENT_ID,
                client_secret=SecretStr(CLIENT_SECRET),
                timeout_s=5.0,
                max_attempts=4,
                deadline_s=20.0,
                **platform,
            )
        )
        client = PlatformClient(settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
