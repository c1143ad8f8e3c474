"""Ingest: the SFTP dataflow chain against the embedded emulator (no run is waited for)."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aep.platform import OpenPlatform, open_platform
from backfill.contracts.loader import load_contracts
from backfill.ingest import PullSource, ensure_dataflow
from backfill.targets import target_for
from config.settings import PlatformSettings, Settings

ORG = "0A7D42FC5DB9D3360A495FD3@AdobeOrg"


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[OpenPlatform]:
    settings = Settings(
        state_dir=tmp_path / "state",
        platform=PlatformSettings(mode="embedded", org_id=ORG, sandbox="prod"),
    )
    with open_platform(settings) as opened:
        yield opened


def _stored_key(opened: OpenPlatform, connection_id: str) -> str:
    db = sqlite3.connect(Path(opened.settings.state_dir) / "emulator" / "emulator.sqlite3")
    try:
        [(body,)] = db.execute(
            "SELECT body FROM resources WHERE kind='connections' AND id=?", (connection_id,)
        ).fetchall()
    finally:
        db.close()
    return str(json.loads(body)["auth"]["params"]["privateKeyContent"])


def test_a_rotated_pull_key_is_sent_to_the_existing_base_connection(platform: OpenPlatform):
    # a landing zone at a fixed address (a real SFTP server): only the secret changes
    target = target_for(load_contracts(None)["stripe_payments"])
    first_key, second_key = _pem(), _pem()

    def ensure(pem: str, *, changed: bool) -> list[str]:
        pull = PullSource("sftp.example.com", 22, "aep", "/landing", private_key_pem=pem)
        flow = ensure_dataflow(
            platform.client,
            prefix="aep-bridge",
            target=target,
            pull=pull,
            folder="/landing/stripe_payments",
            credential_changed=changed,
        )
        assert (
            _stored_key(platform, flow.base_connection_id)
            == base64.b64encode(pem.encode()).decode()
        )
        return flow.created

    assert "base connection" in ensure(first_key, changed=True)
    assert "base connection (auth updated)" not in ensure(first_key, changed=False)
    assert "base connection (auth updated)" in ensure(second_key, changed=True)
