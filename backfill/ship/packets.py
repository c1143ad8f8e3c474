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
- `send_channel_data` sends channel data as `Channel.send` does (same lock, same window
  accounting, same wait while keys are re-negotiated) without building a `Message`.

Both rely on paramiko 5.x internals (`Packetizer` private state, `Channel.lock`,
`_wait_for_send_window`, `Transport._send_user_message`); pyproject pins paramiko < 6.
"""

from __future__ import annotations

import os
import struct
from logging import DEBUG

import paramiko
from paramiko.common import xffffffff
from paramiko.packet import Packetizer
from paramiko.ssh_exception import SSHException

__all__ = ["LeanPacketizer", "send_channel_data"]

_MSG_CHANNEL_DATA = 94
_CHANNEL_DATA_HEAD = struct.Struct(">BII")
_LENGTH = struct.Struct(">I")
_RANDOM_BLOCK = 64 * 1024


class _Parts:
    """A message payload given as parts, joined only once (by `LeanPacketizer`)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes | memoryview) -> None:
        self.parts = parts

    def asbytes(self) -> bytes:
        return b"".join(self.parts)


class LeanPacketizer(Packetizer):
    """paramiko's `Packetizer` with a shorter send path for AES-GCM (see the module doc)."""

    def __init__(self, socket: object) -> None:
        super().__init__(socket)
        self._pad_pool = b""
        self._pad_pos = 0

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
            sealed = self._Packetizer__block_engine_out.encrypt(iv, plain, length)  # type: ignore[attr-defined]
            self._Packetizer__iv_out = self._inc_iv_counter(iv)  # type: ignore[attr-defined]
            next_seq = (self._Packetizer__sequence_number_out + 1) & xffffffff  # type: ignore[attr-defined]
            if next_seq == 0 and not self._initial_kex_done:
                raise SSHException("Sequence number rolled over during initial kex!")
            self._Packetizer__sequence_number_out = next_seq  # type: ignore[attr-defined]
            out = length + sealed
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
