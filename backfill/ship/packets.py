"""A leaner SSH send path for bulk SFTP writes over paramiko, byte-for-byte the same packets.

An upload is ~32,000 SSH packets per GB (OpenSSH's server takes 32 KiB channel packets), and
paramiko spends most of its time per packet in Python, not in the cipher: a `Message`
(BytesIO) per channel packet, one `os.urandom` call per packet for the AES-GCM padding and
several copies of the payload. Here:

- `LeanPacketizer.send_message` builds AES-GCM packets with one join and one encryption
  (padding drawn from a 64 KiB block of `os.urandom` instead of a call per packet); every
  other cipher, compression or packet dumping goes through paramiko's own code. Sequence
  numbers, IV counter, keepalive time, byte/packet counts and the rekey trigger are kept
  exactly as paramiko keeps them (its private state, under its own write lock);
- `LeanPacketizer.read_message` reads the socket into one buffer (`recv_into`, as much as
  has arrived) instead of two `recv` calls per packet glued with `+=`, and decrypts AES-GCM
  packets straight from it; checks, rekey accounting and timeouts as paramiko's;
- `send_channel_data` sends channel data as `Channel.send` does (same lock, same window
  accounting, same wait while keys are re-negotiated) without building a `Message`.

Both rely on paramiko 5.x internals (`Packetizer` private state, `Channel.lock`,
`_wait_for_send_window`, `Transport._send_user_message`); pyproject pins paramiko < 6.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from logging import DEBUG

import paramiko
from paramiko.common import xffffffff
from paramiko.message import Message
from paramiko.packet import NeedRekeyException, Packetizer
from paramiko.ssh_exception import SSHException

__all__ = ["LeanPacketizer", "send_channel_data"]

_MSG_CHANNEL_DATA = 94
_CHANNEL_DATA_HEAD = struct.Struct(">BII")
_LENGTH = struct.Struct(">I")
_RANDOM_BLOCK = 64 * 1024
_READ_BUFFER = 1 << 20
"""Receive buffer: several of the largest packets we accept (255 KiB) at once."""
_MAX_PACKET = 4 << 20
"""A stated packet length above this is refused instead of buffered (OpenSSH's is 256 KiB)."""


class _Parts:
    """A message payload given as parts, joined only once (by `LeanPacketizer`)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes | memoryview) -> None:
        self.parts = parts

    def asbytes(self) -> bytes:
        return b"".join(self.parts)


class LeanPacketizer(Packetizer):
    """paramiko's `Packetizer` with a shorter send path for AES-GCM (see the module doc)."""

    def __init__(self, sock: object) -> None:
        super().__init__(sock)
        self._pad_pool = b""
        self._pad_pos = 0
        self._rbuf = bytearray(_READ_BUFFER)
        self._rview = memoryview(self._rbuf)
        self._rstart = 0  # buffered, unread bytes are _rbuf[_rstart:_rend]
        self._rend = 0
        self.ack_at_once = hasattr(socket, "TCP_QUICKACK")
        """ACK every receive at once (TCP_QUICKACK) while this is true: during the handshake
        OpenSSH sends two packets in a row (auth success, then `hostkeys-00`); with the
        second one's ACK delayed (40 ms on Linux) its Nagle holds back the next reply, the
        channel-open confirmation, for those 40 ms. `open_connection` turns it off once the
        SFTP session is up (bulk transfer acknowledges with its own traffic)."""

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, need: int, check_rekey: bool) -> None:
        """Receive until `need` unread bytes are buffered, with paramiko's `read_all` rules
        for timeouts (keepalive, rekey, closed, handshake timeout)."""
        remainder = self._Packetizer__remainder  # type: ignore[attr-defined]
        if remainder:  # bytes read past the banner line
            self._Packetizer__remainder = b""  # type: ignore[attr-defined]
            self._take_in(remainder)
        sock = self._Packetizer__socket  # type: ignore[attr-defined]
        while self._rend - self._rstart < need:
            self._make_room(need)
            if self.handshake_timed_out():
                raise EOFError()
            got_timeout = False
            try:
                got = sock.recv_into(self._rview[self._rend :])
                if got == 0:
                    raise EOFError()
                self._rend += got
                if self.ack_at_once:
                    try:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    except OSError:  # not TCP (a socket pair, a proxy): nothing to speed up
                        self.ack_at_once = False
            except TimeoutError:
                got_timeout = True
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    got_timeout = True
                elif self._Packetizer__closed:  # type: ignore[attr-defined]
                    raise EOFError() from None
                else:
                    raise
            if got_timeout:
                if self._Packetizer__closed:  # type: ignore[attr-defined]
                    raise EOFError()
                if (
                    check_rekey and self._rend == self._rstart and self._Packetizer__need_rekey  # type: ignore[attr-defined]
                ):
                    raise NeedRekeyException()
                self._check_keepalive()

    def _make_room(self, need: int) -> None:
        """Free space after `_rend` for at least the rest of `need` (moving the unread part
        to the front, or growing the buffer for an unusually large packet)."""
        have = self._rend - self._rstart
        if len(self._rbuf) - self._rstart >= need and len(self._rbuf) - self._rend >= 16384:
            return
        if need > len(self._rbuf):
            self._rview.release()
            self._rbuf.extend(bytes(need - len(self._rbuf)))
            self._rview = memoryview(self._rbuf)
        if self._rstart:
            self._rbuf[:have] = self._rbuf[self._rstart : self._rend]
            self._rstart, self._rend = 0, have

    def _take_in(self, data: bytes) -> None:
        self._make_room(self._rend - self._rstart + len(data))
        self._rbuf[self._rend : self._rend + len(data)] = data
        self._rend += len(data)

    def read_all(self, n: int, check_rekey: bool = False) -> bytes:
        """paramiko's `read_all` (exactly `n` bytes) served from the receive buffer."""
        self._fill(n, check_rekey)
        start = self._rstart
        self._rstart = start + n
        return bytes(self._rview[start : start + n])

    def read_message(self) -> tuple[int, Message]:  # type: ignore[override]
        """Read, decrypt and check one message (AES-GCM here; anything else as paramiko)."""
        if (
            not self._Packetizer__aead_in  # type: ignore[attr-defined]
            or self._Packetizer__compress_engine_in is not None  # type: ignore[attr-defined]
            or self._Packetizer__dump_packets  # type: ignore[attr-defined]
        ):
            return super().read_message()  # type: ignore[no-any-return]
        # as paramiko: the first block is read with check_rekey
        self._fill(self._Packetizer__block_size_in, True)  # type: ignore[attr-defined]
        (packet_size,) = _LENGTH.unpack_from(self._rbuf, self._rstart)
        if packet_size > _MAX_PACKET:
            raise SSHException(f"packet of {packet_size} bytes refused")
        mac_size = self._Packetizer__mac_size_in  # type: ignore[attr-defined]
        total = 4 + packet_size + mac_size
        self._fill(total, False)
        start = self._rstart
        view = self._rview
        iv = self._Packetizer__iv_in  # type: ignore[attr-defined]
        plain = self._Packetizer__block_engine_in.decrypt(  # type: ignore[attr-defined]
            iv, view[start + 4 : start + total], view[start : start + 4]
        )
        self._rstart = start + total
        self._Packetizer__iv_in = self._inc_iv_counter(iv)  # type: ignore[attr-defined]
        padding = plain[0]
        end = packet_size - padding  # payload is plain[1:end]: command byte, then the message
        if end < 2:
            raise SSHException("malformed packet (empty payload)")
        cmd = plain[1]
        msg = Message(plain[2:end])
        msg.seqno = self._Packetizer__sequence_number_in  # type: ignore[attr-defined]
        next_seq = (msg.seqno + 1) & xffffffff
        if next_seq == 0 and not self._initial_kex_done:
            raise SSHException("Sequence number rolled over during initial kex!")
        self._Packetizer__sequence_number_in = next_seq  # type: ignore[attr-defined]
        self._count_received(packet_size + mac_size + 4)
        return cmd, msg

    def _count_received(self, raw_packet_size: int) -> None:
        """paramiko's rekey accounting for one received packet."""
        self._Packetizer__received_bytes += raw_packet_size  # type: ignore[attr-defined]
        self._Packetizer__received_packets += 1  # type: ignore[attr-defined]
        if self._Packetizer__need_rekey:  # type: ignore[attr-defined]
            self._Packetizer__received_bytes_overflow += raw_packet_size  # type: ignore[attr-defined]
            self._Packetizer__received_packets_overflow += 1  # type: ignore[attr-defined]
            if (
                self._Packetizer__received_packets_overflow >= self.REKEY_PACKETS_OVERFLOW_MAX  # type: ignore[attr-defined]
                or self._Packetizer__received_bytes_overflow >= self.REKEY_BYTES_OVERFLOW_MAX  # type: ignore[attr-defined]
            ):
                raise SSHException("Remote transport is ignoring rekey requests")
        elif (
            self._Packetizer__received_packets >= self.REKEY_PACKETS  # type: ignore[attr-defined]
            or self._Packetizer__received_bytes >= self.REKEY_BYTES  # type: ignore[attr-defined]
        ):
            self._log(DEBUG, "Rekeying (received-bytes/packets limit)")
            self._Packetizer__received_bytes_overflow = 0  # type: ignore[attr-defined]
            self._Packetizer__received_packets_overflow = 0  # type: ignore[attr-defined]
            self._trigger_rekey()

    # -- sending ---------------------------------------------------------------------------

    def _padding(self, n: int) -> bytes:
        if self._pad_pos + n > len(self._pad_pool):
            self._pad_pool = os.urandom(_RANDOM_BLOCK)
            self._pad_pos = 0
        start = self._pad_pos
        self._pad_pos = start + n
        return self._pad_pool[start : start + n]

    def send_message(self, data: object) -> None:  # type: ignore[override]
        """Encrypt and send one message (AES-GCM here; anything else as paramiko does)."""
        with self._Packetizer__write_lock:  # type: ignore[attr-defined]
            if (
                not self._Packetizer__aead_out  # type: ignore[attr-defined]
                or self._Packetizer__compress_engine_out is not None  # type: ignore[attr-defined]
                or self._Packetizer__dump_packets  # type: ignore[attr-defined]
            ):
                super().send_message(data)  # the write lock is an RLock
                return
            parts = data.parts if isinstance(data, _Parts) else (data.asbytes(),)  # type: ignore[attr-defined]
            size = sum(len(p) for p in parts)
            bsize = self._Packetizer__block_size_out  # type: ignore[attr-defined]
            # as `Packetizer._build_packet` for AEAD: the length field is not padded over
            padding = 3 + bsize - ((size + 4) % bsize)
            length = _LENGTH.pack(size + padding + 1)
            plain = b"".join((bytes((padding,)), *parts, self._padding(padding)))
            iv = self._Packetizer__iv_out  # type: ignore[attr-defined]
            engine = self._Packetizer__block_engine_out  # type: ignore[attr-defined]
            if hasattr(engine, "encrypt_into"):  # recent cryptography: no concatenation after
                out: bytes | bytearray = bytearray(4 + len(plain) + 16)
                out[:4] = length
                engine.encrypt_into(iv, plain, length, memoryview(out)[4:])
            else:
                out = length + engine.encrypt(iv, plain, length)
            self._Packetizer__iv_out = self._inc_iv_counter(iv)  # type: ignore[attr-defined]
            next_seq = (self._Packetizer__sequence_number_out + 1) & xffffffff  # type: ignore[attr-defined]
            if next_seq == 0 and not self._initial_kex_done:
                raise SSHException("Sequence number rolled over during initial kex!")
            self._Packetizer__sequence_number_out = next_seq  # type: ignore[attr-defined]
            self.write_all(out)
            self._Packetizer__sent_bytes += len(out)  # type: ignore[attr-defined]
            self._Packetizer__sent_packets += 1  # type: ignore[attr-defined]
            sent_too_much = (
                self._Packetizer__sent_packets >= self.REKEY_PACKETS  # type: ignore[attr-defined]
                or self._Packetizer__sent_bytes >= self.REKEY_BYTES  # type: ignore[attr-defined]
            )
            if sent_too_much and not self._Packetizer__need_rekey:  # type: ignore[attr-defined]
                self._log(DEBUG, "Rekeying (sent-bytes/packets limit)")
                self._Packetizer__received_bytes_overflow = 0  # type: ignore[attr-defined]
                self._Packetizer__received_packets_overflow = 0  # type: ignore[attr-defined]
                self._trigger_rekey()


def send_channel_data(chan: paramiko.Channel, data: memoryview) -> int:
    """Send the start of `data` on `chan` as one channel-data packet, as `Channel.send` does.

    Returns:
        Bytes sent (limited by the peer's window and packet size); 0 if the channel is
        closed or at EOF.

    Raises:
        OSError: the channel is closed (as `Channel.send`); socket.timeout: the window stayed
            shut beyond the channel's timeout.
    """
    with chan.lock:
        if chan.closed:
            raise OSError("Socket is closed")
        n = chan._wait_for_send_window(len(data))
        if n == 0:
            return 0
        head = _CHANNEL_DATA_HEAD.pack(_MSG_CHANNEL_DATA, chan.remote_chanid, n)
    # as Channel._send: outside the channel lock (a rekey could deadlock otherwise)
    chan.transport._send_user_message(_Parts(head, data[:n]))  # type: ignore[union-attr]
    return n
