"""The leaner paramiko paths of shipping (packets.py, pipeline.install_fast_io) against real
servers: same bytes, rekeying mid-transfer, the 32 KiB fallback without limits@openssh.com."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from paramiko.message import Message
from paramiko.packet import Packetizer

from backfill.ship import ConnectSpec, ShipOptions, open_connection, ship
from backfill.ship.connect import DEFAULT_REQUEST_SIZE
from backfill.ship.packets import LeanPacketizer
from backfill.ship.pipeline import _Chunks
from tests.support.sshd import Sshd


def test_chunk_queue_takes_across_and_inside_chunks() -> None:
    q = _Chunks()
    for part in (b"abc", b"", b"defgh", b"ij"):
        q.append(part)
    assert len(q) == 10
    assert q.peek(2) == b"ab"
    del q[:2]
    assert q.peek(4) == b"cdef"  # spans two chunks
    del q[:4]
    assert len(q) == 4 and q.peek(None) == b"ghij"
    assert q.peek(100) == b"ghij"
    del q[:]
    assert len(q) == 0 and q.peek(5) == b""


def _gcm_pair(
    sender: type[Packetizer], receiver: type[Packetizer]
) -> tuple[Packetizer, Packetizer, socket.socket, socket.socket]:
    """Two packetizers on a socket pair, keyed for AES-GCM as paramiko's Transport keys them."""
    a, b = socket.socketpair()
    b.settimeout(0.05)  # paramiko's transport polls with a short timeout too
    key, iv = os.urandom(16), os.urandom(12)
    tx, rx = sender(a), receiver(b)
    tx.set_outbound_cipher(AESGCM(key), 16, None, 16, None, aead=True, iv_out=iv)
    rx.set_inbound_cipher(AESGCM(key), 16, None, 16, None, aead=True, iv_in=iv)
    return tx, rx, a, b


@pytest.mark.parametrize(
    ("sender", "receiver"),
    [(LeanPacketizer, Packetizer), (Packetizer, LeanPacketizer), (LeanPacketizer, LeanPacketizer)],
)
def test_lean_packets_interoperate_with_paramiko(
    sender: type[Packetizer], receiver: type[Packetizer]
) -> None:
    # sizes around the 1 MiB receive buffer: tiny, channel-sized, one larger than the buffer
    sizes = [1, 15, 16, 5000, *([35_000] * 40), 2_500_000, 300, 261_133, 7]
    payloads = [os.urandom(n) for n in sizes]
    tx, rx, a, b = _gcm_pair(sender, receiver)

    def send_all() -> None:
        for i, body in enumerate(payloads):
            m = Message()
            m.add_byte(bytes([90 + i % 10]))
            m.add_bytes(body)
            tx.send_message(m)

    t = threading.Thread(target=send_all)
    t.start()
    try:
        for i, body in enumerate(payloads):
            cmd, msg = rx.read_message()
            assert cmd == 90 + i % 10
            assert msg.asbytes() == body, f"message {i} ({len(body)} bytes) differs"
    finally:
        t.join(10)
        a.close()
        b.close()


def test_lean_packet_with_a_flipped_bit_is_refused() -> None:
    tx, rx, a, b = _gcm_pair(LeanPacketizer, LeanPacketizer)
    plain_tx = socket.socketpair()
    try:
        # capture what the sender writes, flip one bit, feed it to the receiver
        tx._Packetizer__socket = plain_tx[0]  # type: ignore[attr-defined]
        m = Message()
        m.add_byte(bytes([94]))
        m.add_bytes(os.urandom(1000))
        tx.send_message(m)
        wire = bytearray(plain_tx[1].recv(65536))
        wire[100] ^= 0x01
        a.sendall(bytes(wire))
        with pytest.raises(InvalidTag):
            rx.read_message()
    finally:
        for s in (a, b, *plain_tx):
            s.close()


def test_gcm_lean_path_rekeys_mid_transfer_and_bytes_match(
    sshd: Sshd,
    spec: ConnectSpec,
    make_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # rekey every 512 KiB instead of every 512 MiB: several key exchanges during one file
    monkeypatch.setattr(LeanPacketizer, "REKEY_BYTES", 512 * 1024)
    rekeys: list[int] = []
    real_trigger = LeanPacketizer._trigger_rekey

    def counting(self: LeanPacketizer) -> None:
        rekeys.append(1)
        real_trigger(self)

    monkeypatch.setattr(LeanPacketizer, "_trigger_rekey", counting)
    with open_connection(spec) as conn:
        transport = conn.client.get_transport()
        assert transport is not None
        assert isinstance(transport.packetizer, LeanPacketizer)
        assert transport.local_cipher == "aes128-gcm@openssh.com"
    src = make_file("rekey.csv", 3_000_000)
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), overlap_min_bytes=1 << 20),
    )
    assert result.ok, result.asdict()
    assert result.files[0].verified_by == "overlapped"
    assert len(rekeys) >= 4
    assert (sshd.landing / "rekey.csv").read_bytes() == src.read_bytes()


def test_request_size_falls_back_to_32k_without_limits_extension(tmp_path: Path) -> None:
    import paramiko

    from backfill.sftpd import embedded_server
    from backfill.sftpd import server as embedded

    state = tmp_path / "state"
    with pytest.MonkeyPatch.context() as mp:
        # paramiko's own SFTP server: no limits@openssh.com (answers "unsupported")
        mp.setattr(embedded._SftpServer, "_process", paramiko.SFTPServer._process)
        with embedded_server(state) as (_server, spec):
            with open_connection(spec) as conn:
                assert conn.request_size == DEFAULT_REQUEST_SIZE
            src = tmp_path / "small-requests.csv"
            src.write_bytes(os.urandom(1_500_000))
            result = ship([src], spec, state_dir=state, options=ShipOptions(remote_dir="/"))
    assert result.ok, result.asdict()
    assert (state / "sftp" / "small-requests.csv").read_bytes() == src.read_bytes()
