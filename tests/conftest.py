"""Fixtures shared by every test: isolated environment, real servers on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import Sshd, sshd_available, start_sshd


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AEP_BRIDGE_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AEP_BRIDGE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """Debian's OpenSSH sshd on a free loopback port (installed by .ci/run)."""
    if not sshd_available():
        pytest.fail(
            "OpenSSH sshd is not installed: run `make sshd` (apt-get install openssh-server)"
        )
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()
