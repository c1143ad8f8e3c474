"""aep-smoke against the embedded emulator: a profile found through Profile access; a withheld
landing times out into a support bundle with no secret in it."""

from __future__ import annotations

import json
from pathlib import Path

from aep.platform import OpenPlatform
from config.settings import Settings
from sync.apply import apply
from sync.desired import DesiredState
from sync.history import History
from sync.smoke import build_record, send_smoke
from tests.sync.conftest import ORG, STRIPE_TOKEN, Admin, only


def _applied(platform: OpenPlatform, desired: DesiredState, settings: Settings) -> History:
    history = History.open(settings.state_dir)
    apply(platform.client, desired, history)
    return history


def test_a_profile_sent_through_the_capillary_inlet_is_found_by_identity(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    desired = only(desired, "capillary-profile")
    with _applied(platform, desired, settings) as history:
        result = send_smoke(
            platform.client,
            desired,
            history,
            "capillary-profile",
            kind=None,
            timeout_s=20,
            poll_s=0.2,
            sync_validation=True,
            bundles_dir=settings.state_dir / "bundles",
        )
    assert result.landed, result.error
    assert result.kind == "profile" and result.bundle is None
    assert result.latency_s is not None and 0.0 <= result.latency_s < 20
    assert result.confirmed_by[0].startswith("profile ")
    entity = platform.client.profiles.get_entity(result.identity, "email")
    assert entity is not None and result.dataset_id in entity.sources
    assert entity.entity["personalEmail"]["address"] == result.identity
    loyalty = next(v for k, v in entity.entity.items() if k.startswith("_"))["loyalty"]
    assert loyalty["tier"] == "gold" and loyalty["points"] == 1250
    assert "landed in" in "\n".join(result.lines())


def test_a_transaction_lands_in_a_new_batch_of_its_dataset(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    desired = only(desired, "capillary-transaction")
    with _applied(platform, desired, settings) as history:
        result = send_smoke(
            platform.client,
            desired,
            history,
            "capillary-transaction",
            kind="transaction",
            timeout_s=20,
            poll_s=0.2,
            sync_validation=True,
            bundles_dir=settings.state_dir / "bundles",
        )
    assert result.landed, result.error
    assert result.confirmed_by and result.confirmed_by[0].startswith("batch ")


def test_a_withheld_landing_writes_a_support_bundle_without_secrets(
    platform: OpenPlatform, desired: DesiredState, settings: Settings, admin: Admin
) -> None:
    desired = only(desired, "stripe-charges", "capillary-profile")
    history = _applied(platform, desired, settings)
    admin(
        "POST", "/_emulator/landings/withhold", {"org": ORG, "sandbox": "prod", "datasetId": None}
    )
    with history:
        result = send_smoke(
            platform.client,
            desired,
            history,
            "capillary-profile",
            kind="profile",
            timeout_s=1.0,
            poll_s=0.2,
            sync_validation=True,
            bundles_dir=settings.state_dir / "bundles",
        )
    assert not result.landed
    assert result.error and "not confirmed within 1s" in result.error
    assert result.bundle is not None
    path = Path(result.bundle)
    assert path.parent == settings.state_dir / "bundles"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    bundle = json.loads(text)
    sent = [x for x in bundle["exchanges"] if "/collection/" in x["url"]]
    assert len(sent) == 1 and sent[0]["status"] == 200
    assert sent[0]["request_body"]["identityMap"]["email"][0]["id"] == result.identity
    assert sent[0]["response_body"]["xactionId"] == result.xaction_id
    assert all(x["timestamp"] for x in bundle["exchanges"])
    assert any(x["request_id"] for x in bundle["exchanges"])
    assert bundle["resource_ids"]["flowId"] == result.flow_id
    assert bundle["resource_ids"]["datasetId"] == result.dataset_id
    client = platform.client
    dev = platform.dev_credentials
    assert dev is not None
    secrets = [STRIPE_TOKEN, dev.client_secret, client.auth.token()]
    assert not [s for s in secrets if s in text]
    # the same holds for every exchange the client kept, the Stripe connection's included
    kept = json.dumps([x.__dict__ for x in client.capture.exchanges()], default=str)
    assert not [s for s in secrets if s in kept]
    assert '"accessToken"' in kept  # the Stripe base connection's create is among them, masked
    assert f"support bundle: {path}" in "\n".join(result.lines())


def test_a_record_is_built_from_the_mapping_when_no_template_is_given(
    desired: DesiredState,
) -> None:
    decl = desired.flows["stripe-charges"]
    record = build_record(decl, "tenant", email="a@example.com", test_id="t1")
    assert record["data"]["id"] == "t1"
    assert record["data"]["amount"] == 1 and record["data"]["paid"] is True
    assert record["data"]["payment_method_details"]["card"]["last4"] == "aep-smoke-t1"


def test_a_record_the_schema_refuses_fails_at_once_with_dcs_reasons(
    platform: OpenPlatform, desired: DesiredState, settings: Settings
) -> None:
    desired = only(desired, "capillary-profile")
    decl = desired.flows["capillary-profile"]
    broken = decl.smoke.model_copy(
        update={"record": (decl.smoke.record or "").replace('"points": 1250', '"points": "many"')}
    )
    desired = desired.model_copy(
        update={"flows": {"capillary-profile": decl.model_copy(update={"smoke": broken})}}
    )
    with _applied(platform, desired, settings) as history:
        result = send_smoke(
            platform.client,
            desired,
            history,
            "capillary-profile",
            kind="profile",
            timeout_s=20,
            poll_s=0.2,
            sync_validation=True,
            bundles_dir=settings.state_dir / "bundles",
        )
    assert not result.landed and result.latency_s is None
    assert result.error and result.error.startswith("the inlet refused the record")
    assert result.bundle is not None
    bundle = json.loads(Path(result.bundle).read_text(encoding="utf-8"))
    (sent,) = bundle["exchanges"]
    assert sent["status"] == 400 and "syncValidation=true" in sent["url"]
    causes = sent["response_body"]["report"]["cause"]["_streamingValidation"]
    assert causes and "points" in json.dumps(causes)
