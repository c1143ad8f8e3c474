"""The watch job (runs, failures, state) and the desired-state file's checks."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from aep.names import resource_name
from aep.platform import OpenPlatform, open_platform
from config.loader import ConfigError
from config.settings import PlatformSettings, Settings
from sync.apply import apply
from sync.daemon import Daemon
from sync.desired import DesiredState, load_desired
from sync.history import History
from sync.watch import watch
from tests.sync.conftest import ORG, make_settings, only


def test_watch_records_runs_and_alerts_once_per_failure(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state")
    desired = only(load_desired(settings), "stripe-charges")
    # 900x: the Stripe flow's 15-minute schedule runs every second
    options = {"faults": True, "clock_scale": 900.0}
    with (
        open_platform(settings, emulator_options=options) as opened,
        History.open(settings.state_dir) as history,
    ):
        c = opened.client
        apply(c, desired, history)
        flow = c.flows.flows.find_by_name(resource_name("aep-bridge", "stripe-charges.flow"))
        assert flow is not None
        httpx.post(
            opened.base_url + "/_emulator/runs/fail",
            json={"flowId": flow.id, "org": ORG, "sandbox": "prod", "message": "Stripe said 401"},
            timeout=10,
        ).raise_for_status()
        deadline = time.monotonic() + 20
        while not any((r.status or "").lower() == "failed" for r in c.flows.runs(flow.id)):
            assert time.monotonic() < deadline, "no failed run"
            time.sleep(0.2)
        c.flows.disable_flow(flow.id)

        report = watch(c, desired, history)
        (entry,) = report.flows
        assert entry.state == "disabled" and entry.runs_seen >= 2
        kinds = {a.kind for a in history.alerts()}
        assert kinds == {"run-failed", "state"}
        failed = next(a for a in history.alerts() if a.kind == "run-failed")
        assert "Stripe said 401" in failed.message and failed.flow_key == "stripe-charges"
        assert any(r.status and r.status.lower() == "success" for r in history.runs())
        assert any("is disabled, configured enabled" in a for a in report.new_alerts)

        again = watch(c, desired, history)
        assert again.new_alerts == []  # each failure is reported once


def test_remote_mode_needs_every_named_secret(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        platform=PlatformSettings(mode="remote", org_id=ORG, client_id="x"),
    )
    with pytest.raises(ConfigError) as info:
        load_desired(settings)
    text = str(info.value)
    for variable in (
        "AEP_BRIDGE_FLOWS__STRIPE_ACCESS_TOKEN",
        "AEP_BRIDGE_FLOWS__CAPILLARY_CLIENT_SECRET",
        "AEP_BRIDGE_FLOWS__CAPILLARY_ACCESS_TOKEN",
    ):
        assert variable in text


def test_the_secret_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AEP_BRIDGE_FLOWS__STRIPE_ACCESS_TOKEN", "sk_test_from_env")
    settings = Settings(state_dir=tmp_path, platform=PlatformSettings(org_id=ORG))
    desired = load_desired(settings)
    assert desired.auth("stripe")["params"]["accessToken"] == "sk_test_from_env"
    assert "sk_test_from_env" not in repr(desired)


def test_a_bad_flows_file_lists_every_problem_with_its_key(tmp_path: Path) -> None:
    bad = tmp_path / "flows.toml"
    bad.write_text(
        """
[flows.one]
connection_spec_id = "x"
flow_spec_id = "y"
base_connection = "missing"
colour = "blue"
schedule = { frequency = "hourly" }
[flows.one.schema]
class = "profile"
[flows.one.mapping]
items = []
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_desired(Settings(state_dir=tmp_path), bad)
    problems = info.value.problems
    assert info.value.source == str(bad)
    assert any(p.startswith("flows.one.colour") for p in problems)
    assert any(p.startswith("flows.one.schedule") for p in problems)
    assert any(p.startswith("flows.one.mapping.items") for p in problems)


def test_the_daemon_takes_up_an_edited_flows_file_and_keeps_the_last_good_one(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    first = only(desired, "customerio-events")
    decl = first.flows["customerio-events"]
    edited = first.model_copy(
        update={"flows": {"customerio-events": decl.model_copy(update={"description": "v2"})}}
    )
    files = [first, edited]

    def reload() -> DesiredState:
        if not files:
            raise ConfigError("flows.toml", ["flows.x: broken"])
        return files.pop(0)

    with History.open(settings.state_dir) as history:
        daemon = Daemon(
            platform.client, first, history, apply_every_min=15, watch_every_s=60, reload=reload
        )
        assert daemon.apply_job() is not None  # creates, from the first file
        updated = daemon.apply_job()  # the edited file: the description is patched
        assert updated is not None and updated.counts()["update"] == 1
        kept = daemon.apply_job()  # a broken file: the last good state is kept
        assert kept is not None and not kept.has_changes
        assert daemon.desired is edited
        assert [a.ok for a in history.applies()] == [True, True, True]
    flow = platform.client.flows.flows.find_by_name(
        resource_name("aep-bridge", "customerio-events.flow")
    )
    assert flow is not None and flow.description == "v2"
