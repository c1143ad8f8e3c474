"""Fixtures of the ship tests: a ConnectSpec for the sshd fixture, files with random bytes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backfill.ship import ConnectSpec
from tests.support.sshd import Sshd, start_sshd


def spec_for(server: Sshd, **changes: object) -> ConnectSpec:
    """A ConnectSpec reaching `server` with its client key and known_hosts."""
    spec = ConnectSpec(
        host=server.host,
        port=server.port,
        user=server.user,
        known_hosts=server.known_hosts,
        key_path=server.client_key,
        timeout_s=5.0,
        keepalive_s=5,
    )
    return spec.with_(**changes) if changes else spec


@pytest.fixture
def spec(sshd: Sshd) -> ConnectSpec:
    return spec_for(sshd)


@pytest.fixture
def sshd_no_posix_rename(tmp_path: Path) -> Iterator[Sshd]:
    """OpenSSH refusing the posix-rename request (`internal-sftp -P posix-rename`)."""
    server = start_sshd(tmp_path / "sshd-np", sftp_flags="-P posix-rename")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """make_file(name, size) -> a file of `size` random bytes under tmp_path/src."""

    def make(name: str, size: int, data: bytes | None = None) -> Path:
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        path = src / name
        path.write_bytes(data if data is not None else os.urandom(size))
        return path

    return make
