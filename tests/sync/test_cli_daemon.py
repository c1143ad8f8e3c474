"""`aep-sync plan|apply|run|status` and `aep-smoke send` as commands; the daemon as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import smoke_app, sync_app
from sync.daemon import DaemonLock, DaemonLocked
from sync.history import History, history_path
from tests.sync.conftest import CUSTOMERIO_ONLY, ORG

BIN = Path(sys.executable).parent
runner = CliRunner()


def _config(tmp_path: Path, *, watch_s: float = 60.0) -> Path:
    flows = tmp_path / "flows.toml"
    flows.write_text(CUSTOMERIO_ONLY, encoding="utf-8")
    config = tmp_path / "aep.toml"
    config.write_text(
        f"""
state_dir = "{tmp_path / "state"}"
[platform]
mode = "embedded"
org_id = "{ORG}"
[flows]
file = "{flows}"
watch_interval_s = {watch_s}
[smoke]
poll_s = 0.2
""",
        encoding="utf-8",
    )
    return config


def test_plan_apply_run_once_status_as_commands(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    pending = runner.invoke(sync_app, ["plan", "--config", config, "--expect-no-changes"])
    assert pending.exit_code == 2, pending.output
    assert "Plan: 6 to create, 0 to update, 0 unchanged." in pending.output
    assert "+ create    customerio-events        flow" in pending.output

    declined = runner.invoke(sync_app, ["apply", "--config", config])  # stdin is no TTY
    assert declined.exit_code == 1
    assert "not applied" in declined.output and "--yes" in declined.output
    assert not history_path(tmp_path / "state").exists()

    with DaemonLock(tmp_path / "state"):  # a daemon is running: apply waits its turn
        busy = runner.invoke(sync_app, ["apply", "--yes", "--config", config])
    assert busy.exit_code == 5, busy.output
    assert "another aep-sync daemon or apply" in busy.output

    once = runner.invoke(sync_app, ["run", "--once", "--config", config])
    assert once.exit_code == 0, once.output
    assert "Applied: 6 created, 0 updated, 0 unchanged." in once.output
    assert "customerio-events        enabled" in once.output

    clean = runner.invoke(sync_app, ["plan", "--config", config, "--expect-no-changes", "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["counts"] == {"create": 0, "update": 0, "no-op": 6}

    status = runner.invoke(sync_app, ["status", "--config", config, "--json"])
    assert status.exit_code == 0, status.output
    summary = json.loads(status.output)
    assert summary["last_successful_apply"] is not None
    assert [(a["ok"], a["trigger"], a["counts"]["create"]) for a in summary["applies"]] == [
        (True, "daemon", 6)
    ]
    assert "customerio-events.flow" in summary["resources"]
    text = runner.invoke(sync_app, ["status", "--config", config])
    assert "last successful apply: 20" in text.output

    late = runner.invoke(
        smoke_app, ["send", "--flow", "customerio-events", "--timeout", "0", "--config", config]
    )
    assert late.exit_code == 1, late.output
    assert "NOT landed: not confirmed within 0s" in late.output
    bundle = late.output.split("support bundle: ", 1)[1].strip()
    assert Path(bundle).is_file() and Path(bundle).parent == tmp_path / "state" / "bundles"

    unknown = runner.invoke(smoke_app, ["send", "--flow", "nope", "--config", config])
    assert unknown.exit_code == 2
    assert "no flow 'nope'" in unknown.output


def test_a_second_lock_holder_is_refused(tmp_path: Path) -> None:
    with DaemonLock(tmp_path):
        with pytest.raises(DaemonLocked) as info:
            DaemonLock(tmp_path).acquire()
        assert str(os.getpid()) in str(info.value)
    DaemonLock(tmp_path).acquire().release()  # free again once released


def test_two_daemons_the_second_refuses_and_sigterm_stops_the_first(tmp_path: Path) -> None:
    config = str(_config(tmp_path, watch_s=0.5))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AEP_BRIDGE_")}
    first = subprocess.Popen(
        [str(BIN / "aep-sync"), "run", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        deadline = time.monotonic() + 60
        path = history_path(tmp_path / "state")
        while True:
            assert first.poll() is None, first.communicate()
            if path.exists():
                with History(path) as history:
                    if history.last_successful_apply():
                        break
            assert time.monotonic() < deadline, "the daemon never applied"
            time.sleep(0.2)
        second = subprocess.run(
            [str(BIN / "aep-sync"), "run", "--once", "--config", config],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
        )
        assert second.returncode == 5, second.stderr
        assert "another aep-sync daemon" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert "aep-sync: stopped" in out
    with History(history_path(tmp_path / "state")) as history:
        assert [a.trigger for a in history.applies()] == ["daemon"]
