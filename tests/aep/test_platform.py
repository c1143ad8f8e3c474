"""Opening the platform per `platform.mode` (http and remote here; embedded in test_emulator)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from aep.platform import open_platform
from config.loader import ConfigError
from config.settings import PlatformSettings, Settings
from tests.aep.conftest import ORG
from tests.aep.server import TestServer


def test_http_mode_without_a_secret_registers_the_dev_credentials(
    server: TestServer, tmp_path: Path
) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        platform=PlatformSettings(
            mode="http",
            gateway_url=server.base_url,
            ims_url=server.base_url,
            inlet_url=server.base_url,
            org_id=ORG,
            client_id="ignored",
        ),
    )
    with open_platform(settings) as opened:
        dev = opened.dev_credentials
        assert dev is not None
        assert server.state.clients[dev.client_id] == dev.client_secret
        opened.client.http.request("GET", server.base_url + "/data/echo")
        seen = server.state.requests_to("GET", "/data/echo")[0]
        assert seen.headers["x-api-key"] == dev.client_id
        assert stat.S_IMODE(dev.path.stat().st_mode) == 0o600
    # the next run reuses the same credentials
    with open_platform(settings) as again:
        assert again.dev_credentials == dev


def test_http_mode_with_a_secret_uses_it(server: TestServer, tmp_path: Path) -> None:
    server.state.clients["mine"] = "my-secret-value"
    settings = Settings(
        state_dir=tmp_path,
        platform=PlatformSettings(
            mode="http",
            gateway_url=server.base_url,
            ims_url=server.base_url,
            org_id=ORG,
            client_id="mine",
            client_secret=SecretStr("my-secret-value"),
        ),
    )
    with open_platform(settings) as opened:
        opened.client.http.request("GET", server.base_url + "/data/echo")
        assert opened.dev_credentials is None
    assert not (tmp_path / "credentials").exists()


def test_http_mode_never_registers_with_a_remote_host(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        platform=PlatformSettings(mode="http", ims_url="https://ims.example.com"),
    )
    with (
        pytest.raises(ConfigError, match="AEP_BRIDGE_PLATFORM__CLIENT_SECRET"),
        open_platform(settings),
    ):
        pass


def test_remote_mode_requires_its_credentials(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, platform=PlatformSettings(mode="remote"))
    with pytest.raises(ConfigError) as info, open_platform(settings):
        pass
    problems = "\n".join(info.value.problems)
    assert "platform.org_id" in problems and "platform.client_id" in problems
    assert "AEP_BRIDGE_PLATFORM__CLIENT_SECRET" in problems
    assert not (tmp_path / "credentials").exists()  # no dev credentials for a real org


def test_an_unusable_state_dir_is_a_configuration_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = Settings(state_dir=blocker / "state", platform=PlatformSettings(mode="embedded"))
    with pytest.raises(ConfigError) as info, open_platform(settings):
        pass
    assert info.value.problems[0].startswith("state_dir: cannot keep development credentials")
