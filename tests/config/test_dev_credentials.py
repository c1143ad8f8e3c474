"""Embedded mode's generated credentials: created once with mode 0600, then reused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from config.dev_credentials import ensure_dev_credentials


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_on_first_use_then_reused(tmp_path: Path) -> None:
    first = ensure_dev_credentials(tmp_path / "state")
    assert first.path == tmp_path / "state" / "credentials" / "dev-client.json"
    assert _mode(first.path) == 0o600
    assert _mode(first.path.parent) == 0o700
    assert first.client_id.startswith("aep-bridge-dev-")
    assert len(first.client_secret) >= 40
    assert first.client_secret not in repr(first)
    again = ensure_dev_credentials(tmp_path / "state")
    assert (again.client_id, again.client_secret) == (first.client_id, first.client_secret)
    other = ensure_dev_credentials(tmp_path / "other")
    assert other.client_secret != first.client_secret


def test_a_file_opened_up_is_tightened_again(tmp_path: Path) -> None:
    creds = ensure_dev_credentials(tmp_path)
    os.chmod(creds.path, 0o644)
    assert ensure_dev_credentials(tmp_path).client_secret == creds.client_secret
    assert _mode(creds.path) == 0o600


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "credentials" / "dev-client.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"dev-client\.json"):
        ensure_dev_credentials(tmp_path)
