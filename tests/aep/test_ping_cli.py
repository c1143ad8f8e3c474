"""`aep-sync ping`: opens the configured platform for real (a subprocess on the console script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.aep.server import free_port

BIN = Path(sys.executable).parent


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AEP_BRIDGE_")}
    environ.update(AEP_BRIDGE_STATE_DIR=str(tmp_path / "state"), **env)
    return subprocess.run(
        [str(BIN / "aep-sync"), "ping", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environ,
    )


def test_ping_the_embedded_default(tmp_path: Path) -> None:
    done = _run(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mode"] == "embedded"
    assert result["gateway"].startswith("http://127.0.0.1:")
    assert result["client_id"].startswith("aep-bridge-dev-")
    assert result["tenant_id"] and result["flows"] == 0
    assert (tmp_path / "state" / "credentials" / "dev-client.json").exists()


def test_ping_an_unreachable_platform_exits_3_naming_the_next_step(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = _run(
        tmp_path,
        AEP_BRIDGE_PLATFORM__MODE="http",
        AEP_BRIDGE_PLATFORM__GATEWAY_URL=url,
        AEP_BRIDGE_PLATFORM__IMS_URL=url,
        AEP_BRIDGE_PLATFORM__CLIENT_SECRET="cs-never-printed",
        AEP_BRIDGE_PLATFORM__MAX_ATTEMPTS="2",
    )
    assert done.returncode == 3
    assert "platform not reachable" in done.stderr and "aep-sync show-config" in done.stderr
    assert "cs-never-printed" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_ping_remote_without_a_secret_exits_2(tmp_path: Path) -> None:
    done = _run(tmp_path, AEP_BRIDGE_PLATFORM__MODE="remote")
    assert done.returncode == 2
    assert "AEP_BRIDGE_PLATFORM__CLIENT_SECRET" in done.stderr
