"""plan / apply against the embedded emulator over real HTTP: creates, idempotency, drift, faults."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from aep.client import PlatformClient
from aep.flows import patch
from aep.names import resource_name
from aep.platform import OpenPlatform
from config.settings import Settings
from sync.apply import apply
from sync.desired import DesiredState
from sync.history import History, history_path
from sync.plan import Action, SyncError, plan
from tests.sync.conftest import STRIPE_TOKEN, Admin, only


def _expected(desired: DesiredState) -> set[tuple[str, str]]:
    """(flow, resource) pairs one chain per desired flow makes."""
    out: set[tuple[str, str]] = set()
    for key, flow in desired.flows.items():
        roles = ["schema", "dataset", "source connection", "target connection", "mapping set"]
        out |= {(key, r) for r in [*roles, "flow"]}
        if flow.schema_.identity:
            out.add((key, "identity"))
        if flow.base_connection:
            out.add((f"connections.{flow.base_connection}", "base connection"))
    return out


def _writes(opened: OpenPlatform, since: int) -> list[str]:
    return [
        f"{x.method} {x.url}"
        for x in opened.client.capture.exchanges()[since:]
        if x.method in ("POST", "PATCH", "PUT", "DELETE") and "/ims/" not in x.url
    ]


def test_plan_on_an_empty_platform_creates_everything_and_writes_nothing(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    before = len(platform.client.capture.exchanges())
    result = plan(platform.client, desired, None)
    assert {c.action for c in result.changes} == {Action.CREATE}
    assert {(c.flow, c.resource) for c in result.changes} == _expected(desired)
    assert len(result.changes) == 27  # 4 flows x 6, one identity, two base connections
    assert result.counts() == {"create": 27, "update": 0, "no-op": 0}
    assert result.lines()[-1] == "Plan: 27 to create, 0 to update, 0 unchanged."
    assert _writes(platform, before) == []
    assert list(platform.client.flows.flows.list()) == []
    assert not history_path(settings.state_dir).exists()


def test_apply_creates_what_plan_showed_then_plan_and_apply_are_no_ops(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    c = platform.client
    planned = plan(c, desired, None)
    with History.open(settings.state_dir) as history:
        done = apply(c, desired, history)
        assert [(x.flow, x.resource, x.name) for x in done.changes] == [
            (x.flow, x.resource, x.name) for x in planned.changes
        ]
        assert {x.action for x in done.changes} == {Action.CREATE}
        assert all(x.id for x in done.changes)
        # exactly one of each, found by its deterministic name
        flows = list(c.flows.flows.list())
        assert sorted(f.name or "" for f in flows) == sorted(
            resource_name("aep-bridge", f"{k}.flow") for k in desired.flows
        )
        assert len(list(c.flows.connections.list())) == 2
        assert len(list(c.flows.source_connections.list())) == 4
        profile_flow = next(f for f in flows if "capillary-profile" in (f.name or ""))
        assert profile_flow.inlet_url and profile_flow.state == "enabled"
        stripe = next(f for f in flows if "stripe" in (f.name or ""))
        assert stripe.scheduleParams and stripe.scheduleParams["frequency"] == "minute"
        assert stripe.inlet_url is None  # batch REST flow spec: no inlet

        again = plan(c, desired, history)
        assert not again.has_changes, "\n".join(again.lines())
        before = len(c.capture.exchanges())
        second = apply(c, desired, history)
        assert second.counts() == {"create": 0, "update": 0, "no-op": 27}
        assert _writes(platform, before) == []
        assert [a.ok for a in history.applies()] == [True, True]
    # the Stripe token went out masked in every captured exchange
    assert STRIPE_TOKEN not in json.dumps([asdict(x) for x in c.capture.exchanges()])


def _assert_the_tutorials_forms(c: PlatformClient) -> None:
    """The create bodies just sent for stripe-charges and customerio-events (seeds 002, 004)."""
    posted: dict[str, list[dict[str, object]]] = {}
    for x in c.capture.exchanges():
        if x.method == "POST" and "/ims/" not in x.url:
            posted.setdefault(x.url.split("?")[0].rsplit("/", 1)[-1], []).append(x.request_body)
    (base,) = posted["connections"]  # Customer.io has none (seed 004)
    assert base == {
        "name": "aep-bridge-stripe.base",
        "description": "Authenticated base connection for Stripe",
        "connectionSpec": {"id": "cc2c31d6-7b8c-4581-b49f-5c8698aa3ab3", "version": "1.0"},
        "auth": {"specName": "OAuth2 Refresh Code", "params": {"accessToken": "***"}},  # masked
    }
    stripe_source, cio_source = posted["sourceConnections"]
    assert stripe_source["data"] == {"format": "json"}
    assert stripe_source["params"] == {"resourcePath": "charges"}
    assert cio_source == {
        "name": "aep-bridge-customerio-events.source",
        "description": "Streaming Source Connection for customer.io",
        "connectionSpec": {"id": "96479064-7b8a-4d69-b9ed-21c5683837ea", "version": "1.0"},
        "data": {"format": "json"},
        "providerId": "521eee4d-8cbe-4906-bb48-fb6bd4450033",
    }
    stripe_target, cio_target = posted["targetConnections"]
    assert stripe_target["data"]["format"] == "parquet_xdm"  # type: ignore[index]
    assert stripe_target["data"]["schema"]["version"].endswith("version=1.3")  # type: ignore[index]
    assert cio_target["data"]["format"] == "json"  # type: ignore[index]
    stripe_mapping, cio_mapping = posted["mappingSets"]
    assert stripe_mapping["xdmVersion"] == "1.0" and "xdmSchema" in stripe_mapping
    assert len(stripe_mapping["mappings"]) == 36  # type: ignore[arg-type]
    assert "outputSchema" in cio_mapping
    assert cio_mapping["mappings"][2] == {  # type: ignore[index]
        "destinationXdmPath": f"_{c.schemas.tenant_id()}.event_id0",
        "sourceAttribute": "event_id",
        "identity": False,
        "version": 0,
    }
    stripe_flow, cio_flow = posted["flows"]
    schedule = stripe_flow["scheduleParams"]
    assert schedule["frequency"] == "minute" and schedule["interval"] == 15  # type: ignore[index]
    assert str(schedule["startTime"]).isdigit()  # type: ignore[index]
    assert stripe_flow["flowSpec"]["id"] == "6499120c-0b15-42dc-936e-847ea3c24d72"  # type: ignore[index]
    assert "scheduleParams" not in cio_flow
    assert cio_flow["flowSpec"]["id"] == "e77fde5a-22a8-11ed-861d-0242ac120002"  # type: ignore[index]
    assert cio_flow["transformations"][0]["params"]["mappingVersion"] == 0  # type: ignore[index]


def test_drift_is_planned_as_updates_and_fixed_by_apply(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    c = platform.client
    desired = only(desired, "stripe-charges", "customerio-events")
    with History.open(settings.state_dir) as history:
        apply(c, desired, history)
        _assert_the_tutorials_forms(c)
        # a person disables and renames the Customer.io flow ...
        flow = c.flows.flows.find_by_name(resource_name("aep-bridge", "customerio-events.flow"))
        assert flow is not None
        c.flows.disable_flow(flow.id)
        flow = c.flows.flows.get(flow.id)
        c.flows.flows.patch(flow.id, flow.etag or "", [patch("replace", "/name", "renamed")])
        # ... edits the Stripe source's description and the Stripe flow's schedule
        source = c.flows.source_connections.find_by_name(
            resource_name("aep-bridge", "stripe-charges.source")
        )
        assert source is not None
        c.flows.source_connections.patch(
            source.id, source.etag or "", [patch("replace", "/description", "edited by hand")]
        )
        stripe = c.flows.flows.find_by_name(resource_name("aep-bridge", "stripe-charges.flow"))
        assert stripe is not None
        c.flows.flows.patch(
            stripe.id, stripe.etag or "", [patch("replace", "/scheduleParams/interval", 30)]
        )

        drift = plan(c, desired, history)
        updates = {(x.flow, x.resource): x for x in drift.changes if x.action == Action.UPDATE}
        assert set(updates) == {
            ("customerio-events", "flow"),
            ("stripe-charges", "source connection"),
            ("stripe-charges", "flow"),
        }, "\n".join(drift.lines())
        flow_fields = {(f.path, f.kind): f for f in updates[("customerio-events", "flow")].fields}
        assert set(flow_fields) == {("/state", "replace"), ("/name", "replace")}
        assert flow_fields[("/state", "replace")].before == "disabled"
        assert flow_fields[("/name", "replace")].after == resource_name(
            "aep-bridge", "customerio-events.flow"
        )
        (desc,) = updates[("stripe-charges", "source connection")].fields
        assert (desc.path, desc.kind, desc.before, desc.after) == (
            "/description",
            "replace",
            "edited by hand",
            "Stripe source connection for charges data",
        )
        assert desc.op() == {
            "op": "replace",
            "path": "/description",
            "value": "Stripe source connection for charges data",
        }
        (interval,) = updates[("stripe-charges", "flow")].fields
        assert (interval.path, interval.before, interval.after) == (
            "/scheduleParams/interval",
            30,
            15,
        )
        text = "\n".join(drift.lines())
        assert "~ update" in text and "replace /scheduleParams/interval: 30 -> 15" in text

        fixed = apply(c, desired, history)
        assert fixed.counts()["update"] == 3
        assert not plan(c, desired, history).has_changes
    now = c.flows.flows.get(flow.id)
    assert now.state == "enabled" and now.name == resource_name(
        "aep-bridge", "customerio-events.flow"
    )
    assert c.flows.source_connections.get(source.id).description == (
        "Stripe source connection for charges data"
    )
    assert (c.flows.flows.get(stripe.id).scheduleParams or {})["interval"] == 15


def test_a_changed_mapping_moves_the_flow_to_the_new_version(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    c = platform.client
    desired = only(desired, "customerio-events")
    with History.open(settings.state_dir) as history:
        apply(c, desired, history)
        decl = desired.flows["customerio-events"]
        fewer = decl.mapping.model_copy(update={"items": decl.mapping.items[:-1]})
        changed = desired.model_copy(
            update={"flows": {"customerio-events": decl.model_copy(update={"mapping": fewer})}}
        )
        drift = plan(c, changed, history)
        actions = {x.resource: x for x in drift.changes if x.action == Action.UPDATE}
        assert set(actions) == {"mapping set", "flow"}
        assert actions["flow"].fields[0].path == "/transformations/0"
        apply(c, changed, history)
        assert not plan(c, changed, history).has_changes
    flow = c.flows.flows.find_by_name(resource_name("aep-bridge", "customerio-events.flow"))
    assert flow is not None
    assert flow.transformations[0]["params"]["mappingVersion"] == 1


def test_a_lost_create_response_still_leaves_one_resource(
    platform: OpenPlatform, desired: DesiredState, settings: Settings, admin: Admin
) -> None:
    c = platform.client
    desired = only(desired, "capillary-profile")
    for path in ("/flowservice/flows$", "/catalog/dataSets$", "/conversion/mappingSets$"):
        admin(
            "POST",
            "/_emulator/faults",
            {"method": "POST", "path": path, "times": 1, "drop": "after"},
        )
    with History.open(settings.state_dir) as history:
        done = apply(c, desired, history)
        assert {x.action for x in done.changes} == {Action.CREATE}
        assert admin("GET", "/_emulator/faults").json() in ([], {"faults": []})
        assert not plan(c, desired, history).has_changes
    name = resource_name("aep-bridge", "capillary-profile.flow")
    assert len(list(c.flows.flows.list(properties=[f"name=={name}"]))) == 1
    dataset = resource_name("aep-bridge", "capillary-profile.dataset")
    assert len(list(c.catalog.datasets(name=dataset))) == 1
    tag = "aep-bridge:capillary-profile.mapping"
    assert len([m for m in c.mappings.mapping_sets() if m.has_tag(tag)]) == 1


def test_a_plan_reads_the_history_but_never_creates_it(
    platform: OpenPlatform, desired: DesiredState, tmp_path: Path
) -> None:
    small = only(desired, "customerio-events")
    plan(platform.client, small, None)
    assert not (tmp_path / "state" / "sync").exists()


def test_changes_a_person_must_make_stop_the_plan_naming_what_to_do(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    c = platform.client
    desired = only(desired, "customerio-events")
    decl = desired.flows["customerio-events"]
    with History.open(settings.state_dir) as history:
        apply(c, desired, history)
        other_spec = decl.model_copy(
            update={"flow_spec_id": "6499120c-0b15-42dc-936e-847ea3c24d72"}
        )
        with pytest.raises(SyncError, match="delete the flow"):
            plan(
                c, desired.model_copy(update={"flows": {"customerio-events": other_spec}}), history
            )
        missing = decl.model_copy(
            update={"dataset": decl.dataset.model_copy(update={"id": "0123456789abcdef01234567"})}
        )
        with pytest.raises(SyncError, match=r"flows\.customerio-events\.dataset\.id"):
            plan(c, desired.model_copy(update={"flows": {"customerio-events": missing}}), history)
        with pytest.raises(SyncError):
            apply(c, desired.model_copy(update={"flows": {"customerio-events": missing}}), history)
        gone = plan(c, desired.model_copy(update={"flows": {}}), history)
        assert not gone.has_changes and len(gone.orphans) == 1
        assert gone.orphans[0].startswith("customerio-events: aep-bridge-customerio-events.flow")
        assert "! not in the flows file any more" in "\n".join(gone.lines())
        failed = history.applies()[0]
        assert failed.ok is False and failed.error and failed.error.startswith("SyncError: ")
        assert history.last_successful_apply() == history.applies()[1]


def test_a_412_on_patch_is_read_again_and_sent_once_more(
    platform: OpenPlatform, desired: DesiredState, settings: Settings, admin: Admin
) -> None:
    c = platform.client
    desired = only(desired, "customerio-events")
    with History.open(settings.state_dir) as history:
        apply(c, desired, history)
        flow = c.flows.flows.find_by_name(resource_name("aep-bridge", "customerio-events.flow"))
        assert flow is not None
        c.flows.flows.patch(flow.id, flow.etag or "", [patch("replace", "/description", "x")])
        admin(
            "POST",
            "/_emulator/faults",
            {"method": "PATCH", "path": "/flowservice/flows/", "times": 1, "status": 412},
        )
        done = apply(c, desired, history)
        assert done.counts()["update"] == 1
        assert not plan(c, desired, history).has_changes
    assert c.flows.flows.get(flow.id).description == "Streaming Dataflow for Customer.io"
    patches = [x.status for x in c.capture.exchanges() if x.method == "PATCH"]
    assert patches[-2:] == [412, 200]
