"""Fixtures of the sync tests: the embedded emulator over loopback HTTP, settings, desired state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from aep.platform import OpenPlatform, open_platform
from config.settings import FlowsSettings, PlatformSettings, Settings, SmokeSettings
from sync.desired import DesiredState, load_desired

ORG = "0A7D42FC5DB9D3360A495FD3@AdobeOrg"
STRIPE_TOKEN = "sk_test_Sync-Secret-Token-0042"

CUSTOMERIO_ONLY = """
[flows.customerio-events]
description = "Streaming Dataflow for Customer.io"
connection_spec_id = "96479064-7b8a-4d69-b9ed-21c5683837ea"
provider_id = "521eee4d-8cbe-4906-bb48-fb6bd4450033"
flow_spec_id = "e77fde5a-22a8-11ed-861d-0242ac120002"
source_description = "Streaming Source Connection for customer.io"
source_data = { format = "json" }
target_description = "Streaming Target Connection for Customer.io"
target_format = "json"

[flows.customerio-events.schema]
class = "experienceevent"
[flows.customerio-events.schema.fields]
"email" = "string"
"metricx" = "string"

[flows.customerio-events.mapping]
items = [
  ["data.identifiers.email", "_{TENANT}.email"],
  ["metric", "_{TENANT}.metricx"],
]
"""


def make_settings(state_dir: Path, **flows: Any) -> Settings:
    """Embedded-mode settings on `state_dir`, fast smoke polling, a Stripe token."""
    return Settings(
        state_dir=state_dir,
        platform=PlatformSettings(mode="embedded", org_id=ORG, sandbox="prod", max_attempts=3),
        flows=FlowsSettings(stripe_access_token=SecretStr(STRIPE_TOKEN), **flows),
        smoke=SmokeSettings(timeout_s=20.0, poll_s=0.2),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose state directory is the test's."""
    return make_settings(tmp_path / "state")


@pytest.fixture
def platform(settings: Settings) -> Iterator[OpenPlatform]:
    """The embedded emulator (faults on, landings after 0.2 s) and a client for it."""
    with open_platform(
        settings, emulator_options={"faults": True, "landing_delay_s": 0.2}
    ) as opened:
        yield opened


@pytest.fixture
def desired(settings: Settings) -> DesiredState:
    """The shipped desired dataflows (config/flows.toml)."""
    return load_desired(settings)


def only(desired: DesiredState, *keys: str) -> DesiredState:
    """The desired state restricted to some flows (keeps tests short)."""
    return desired.model_copy(update={"flows": {k: desired.flows[k] for k in keys}})


Admin = Callable[..., httpx.Response]


@pytest.fixture
def admin(platform: OpenPlatform) -> Admin:
    """Call the emulator's admin API."""

    def call(method: str, path: str, json: object = None) -> httpx.Response:
        response = httpx.request(method, platform.base_url + path, json=json, timeout=10)
        response.raise_for_status()
        return response

    return call
