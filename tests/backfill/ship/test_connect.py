"""Connecting: host key pinned or refused, wrong key refused, passphrases, silent servers."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from backfill.ship import (
    AuthFailed,
    ConnectFailed,
    HostKeyMismatch,
    UnknownHostKey,
    fetch_host_key,
    fingerprint,
    open_connection,
    pin_host_key,
)
from backfill.ship.hostkeys import known_keys
from tests.backfill.ship.conftest import spec_for
from tests.support.sshd import Sshd, keygen, start_sshd


def test_connects_with_pinned_key_and_asks_server_limits(sshd: Sshd) -> None:
    with open_connection(spec_for(sshd)) as conn:
        assert conn.alive()
        # OpenSSH states limits@openssh.com; we use its larger request size
        assert conn.request_size > 32768
        assert conn.sftp.normalize(".") == str(sshd.landing)


def test_host_key_mismatch_is_refused_with_both_fingerprints(sshd: Sshd, tmp_path: Path) -> None:
    keygen(tmp_path / "other_host", "ed25519")
    pub = (tmp_path / "other_host.pub").read_text().split()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
    with pytest.raises(HostKeyMismatch) as info:
        open_connection(spec_for(sshd, known_hosts=kh))
    msg = str(info.value)
    real = fetch_host_key(sshd.host, sshd.port)
    expected = known_keys(kh, "127.0.0.1", sshd.port)[0]
    assert "HOST KEY MISMATCH" in msg
    assert fingerprint(expected) in msg and real.fingerprint in msg
    assert "aep-migrate trust-host" in msg
    assert info.value.offered == real.fingerprint


def test_unknown_host_is_refused_never_added(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "empty_known_hosts"
    kh.write_text("")
    with pytest.raises(UnknownHostKey) as info:
        open_connection(spec_for(sshd, known_hosts=kh))
    assert "aep-migrate trust-host 127.0.0.1:" in str(info.value)
    assert kh.read_text() == ""  # nothing auto-added


def test_trust_host_pins_offered_key_then_connects(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    offered = fetch_host_key(sshd.host, sshd.port)
    assert offered.line == sshd.known_hosts.read_text().strip()
    assert pin_host_key(kh, offered).action == "added"
    assert pin_host_key(kh, offered).action == "already"
    assert kh.stat().st_mode & 0o777 == 0o600
    with open_connection(spec_for(sshd, known_hosts=kh)) as conn:
        assert conn.alive()


def test_wrong_client_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    wrong = keygen(tmp_path / "wrong", "ed25519")
    with pytest.raises(AuthFailed, match="refused user"):
        open_connection(spec_for(sshd, key_path=wrong))


def test_encrypted_key_needs_passphrase(tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "s", client_key_type="rsa", client_key_passphrase="s3cret")
    try:
        with pytest.raises(AuthFailed, match="KEY_PASSPHRASE"):
            open_connection(spec_for(server))
        with pytest.raises(AuthFailed) as info:
            open_connection(spec_for(server, key_passphrase="wrong"))
        assert "wrong" not in str(info.value).replace("wrong passphrase", "")
        with open_connection(spec_for(server, key_passphrase="s3cret")) as conn:
            assert conn.alive()
    finally:
        server.stop()


def test_ecdsa_client_key(tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "s", client_key_type="ecdsa")
    try:
        with open_connection(spec_for(server)) as conn:
            assert conn.alive()
    finally:
        server.stop()


def test_silent_server_times_out_instead_of_hanging(sshd: Sshd) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept and then say nothing, ever
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        started = time.monotonic()
        with pytest.raises(ConnectFailed):
            open_connection(spec_for(sshd, port=port, timeout_s=1.0))
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectFailed):
            fetch_host_key("127.0.0.1", port, timeout_s=1.0)
    finally:
        stop.set()
        t.join(2)
        for s in accepted:
            s.close()
        listener.close()


def test_nothing_listening_is_a_connect_failure(sshd: Sshd) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectFailed, match="cannot connect"):
        open_connection(spec_for(sshd, port=port, timeout_s=1.0))


def test_password_auth_is_offered_and_refusal_never_shows_the_secret(tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "s", password_auth=True)
    try:
        spec = spec_for(server, key_path=None, password="hunter2-not-the-password")
        assert "hunter2" not in repr(spec)
        with pytest.raises(AuthFailed) as info:
            open_connection(spec)
        assert "hunter2" not in str(info.value)
        assert "password" in server.log.read_text().lower()  # sshd saw a password attempt
    finally:
        server.stop()


def test_no_credential_at_all_is_a_clear_error(sshd: Sshd) -> None:
    with pytest.raises(AuthFailed, match="no credential"):
        open_connection(spec_for(sshd, key_path=None))


def test_ship_retries_the_first_connection_then_gives_up(sshd: Sshd, tmp_path: Path) -> None:
    from backfill.ship import ShipOptions, ship

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = tmp_path / "a.csv"
    f.write_text("a\n")
    started = time.monotonic()
    with pytest.raises(ConnectFailed):
        ship(
            [f],
            spec_for(sshd, port=port, timeout_s=1.0),
            state_dir=tmp_path / "st",
            options=ShipOptions(remote_dir=str(sshd.landing), max_attempts=3, backoff_base_s=0.05),
        )
    assert 0.1 < time.monotonic() - started < 10  # two backoffs, then the error
