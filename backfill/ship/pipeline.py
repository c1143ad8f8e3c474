"""Pipelined SFTP writes and reads with a sliding window of outstanding requests.

paramiko's own pipelining (`SFTPFile.set_pipelined`) lets up to 100 write requests pile up and
then waits for *all* of them, so the pipe empties every 100 requests (a round trip lost each
time), and it gives no acknowledged offset short of a full drain. Its read prefetch runs a
polling thread. Here, as in OpenSSH's sftp client, a fixed number of requests stays in flight
and each reply is collected as it arrives, in order:

- `PipelinedWriter.confirmed` is always the end of the longest acknowledged prefix, which the
  resume journal records without stalling the pipe;
- `pipelined_read` streams a remote file to a consumer from in-order replies.

It also makes paramiko's SFTP session cheaper per byte (`install_fast_io`): sends through a
memoryview, and a receive buffer that queues chunks instead of paramiko's `array` (which
moves everything still buffered on every read: up to the 8 MiB channel window, per 4-byte
length field).

This module is the only one touching paramiko's request internals (`_async_request`,
`_read_response`, `_write_all`, `_read_all`, `Channel.in_buffer`): all stable from paramiko
3.x through 5.1 and used the same way by paramiko's own `SFTPFile` and `Channel`.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

import paramiko
from paramiko.buffered_pipe import BufferedPipe
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, CMD_WRITE, int64

from backfill.ship.packets import send_channel_data

__all__ = [
    "MAX_OUTSTANDING",
    "Available",
    "NoMoreData",
    "PipelinedWriter",
    "ShortRead",
    "install_fast_io",
    "pipelined_read",
]

MAX_OUTSTANDING = 64
"""Requests in flight per file (OpenSSH's sftp default is 64 too)."""


class _Chunks:
    """A byte queue kept as the chunks it was fed: taking from the front moves nothing else.

    Stands in for the `array` inside paramiko's `BufferedPipe`, which supports `len()`,
    `del buf[:n]` and `del buf[:]` on it (and our `_buffer_*` overrides for the rest).
    """

    __slots__ = ("_head", "_len", "_parts")

    def __init__(self) -> None:
        self._parts: deque[bytes] = deque()
        self._head = 0  # offset into _parts[0]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self._len += len(data)

    def peek(self, limit: int | None) -> bytes:
        """The first `limit` bytes (all with None), copied only when they span chunks."""
        n = self._len if limit is None else min(limit, self._len)
        if not n:
            return b""
        first, head = self._parts[0], self._head
        if n <= len(first) - head:
            return first if head == 0 and n == len(first) else first[head : head + n]
        out: list[bytes] = []
        need = n
        for part in self._parts:
            take = min(len(part) - head, need)
            out.append(part if head == 0 and take == len(part) else part[head : head + take])
            need -= take
            head = 0
            if not need:
                break
        return b"".join(out)

    def __delitem__(self, key: slice) -> None:
        n = self._len if key.stop is None else min(key.stop, self._len)
        self._len -= n
        parts = self._parts
        while n:
            avail = len(parts[0]) - self._head
            if n >= avail:
                parts.popleft()
                self._head = 0
                n -= avail
            else:
                self._head += n
                n = 0


class _ChunkPipe(BufferedPipe):  # type: ignore[type-arg]
    """paramiko's `BufferedPipe` (same locking, timeouts, events) over `_Chunks`."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = _Chunks()  # type: ignore[assignment]

    def _buffer_frombytes(self, data: bytes) -> None:
        self._buffer.append(bytes(data))  # type: ignore[attr-defined]

    def _buffer_tobytes(self, limit: int | None = None) -> bytes:
        return self._buffer.peek(limit)  # type: ignore[attr-defined,no-any-return]


def install_fast_io(sftp: paramiko.SFTPClient) -> None:
    """Make `sftp` send through a memoryview and receive into `_ChunkPipe`.

    paramiko's `BaseSFTP._write_all` re-slices the unsent rest of a request as `bytes` after
    every channel send (32 KiB with OpenSSH), copying a 256 KiB write request ~4 times over,
    and builds a `Message` per channel packet (`packets.send_channel_data` does not); its
    `_read_all` grows the result with `+=`. Same loops, same errors, fewer copies. Call
    while the session is idle (no reply outstanding), as right after it is opened.
    """
    chan = sftp.sock

    def write_all(out: bytes) -> None:
        view = memoryview(out)
        while len(view) > 0:
            n = send_channel_data(chan, view)
            if n <= 0:
                raise EOFError()
            view = view[n:]

    def read_all(n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            x = chan.recv(n)
            if not x:
                raise EOFError()
            parts.append(x)
            n -= len(x)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    old = chan.in_buffer
    pipe = _ChunkPipe()
    if old._event is not None:
        pipe.set_event(old._event)
    leftover = old.empty()
    if leftover:
        pipe.feed(leftover)
    chan.in_buffer = pipe
    sftp._write_all = write_all  # type: ignore[method-assign]
    sftp._read_all = read_all  # type: ignore[method-assign]


class ShortRead(Exception):
    """The server returned fewer bytes than asked before the end of the file."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"short read at {offset}")
        self.offset = offset


_WRITE_HEAD = struct.Struct(">IBII")  # length, type, request id, handle length
_WRITE_TAIL = struct.Struct(">QI")  # offset, data length


def _send_write(sftp: paramiko.SFTPClient, handle: bytes, offset: int, chunk: memoryview) -> int:
    """Send an SFTP write request as `SFTPClient._async_request` would (same request-number
    bookkeeping, same bytes on the wire), with the data copied once instead of four times
    (slice, Message, its getvalue, length prefix). Returns the request number."""
    with sftp._lock:
        num: int = sftp.request_number
        sftp._expecting[num] = type(None)
        sftp.request_number += 1
    n = len(chunk)
    head = _WRITE_HEAD.pack(1 + 4 + 4 + len(handle) + 8 + 4 + n, CMD_WRITE, num, len(handle))
    sftp._write_all(b"".join((head, handle, _WRITE_TAIL.pack(offset, n), chunk)))
    return num


class PipelinedWriter:
    """Writes to an open remote file at increasing offsets, keeping requests in flight."""

    def __init__(
        self,
        sftp: paramiko.SFTPClient,
        handle: bytes,
        *,
        offset: int,
        request_size: int,
        max_outstanding: int = MAX_OUTSTANDING,
    ) -> None:
        self._sftp = sftp
        self._handle = handle
        self._request_size = request_size
        self._max = max_outstanding
        self._pending: deque[tuple[int, int]] = deque()
        self.offset = offset
        """Bytes sent so far (from the start of the file)."""
        self.confirmed = offset
        """End of the prefix the server has acknowledged."""

    def write(self, data: bytes) -> None:
        """Send `data` at the current offset; collect replies that have arrived."""
        step = self._request_size
        view = memoryview(data)
        for i in range(0, len(data), step):
            chunk = view[i : i + step]
            num = _send_write(self._sftp, self._handle, self.offset, chunk)
            self.offset += len(chunk)
            self._pending.append((num, self.offset))
            self._collect(block=len(self._pending) >= self._max)

    def _collect(self, *, block: bool) -> None:
        sock = self._sftp.sock
        while self._pending and (block or sock.recv_ready()):
            num, end = self._pending.popleft()
            t, _ = self._sftp._read_response(num)  # raises on an error status
            if t != CMD_STATUS:
                raise paramiko.SFTPError("expected a status reply to a write")
            self.confirmed = end
            block = len(self._pending) >= self._max

    def drain(self) -> None:
        """Wait for every outstanding reply; afterwards `confirmed == offset`."""
        while self._pending:
            self._collect(block=True)


Available = Callable[[int, bool], int]
"""`available(offset, block)`: how many bytes from the start may be read now; with `block`,
wait until more than `offset` are (returns `offset` or less when there will be no more)."""


class NoMoreData(Exception):
    """The producer of a growing file stopped before the expected size."""


def pipelined_read(
    sftp: paramiko.SFTPClient,
    handle: bytes,
    size: int,
    consume: Callable[[bytes], None],
    *,
    request_size: int,
    max_outstanding: int = MAX_OUTSTANDING,
    available: Available | None = None,
) -> None:
    """Read the first `size` bytes of an open remote file, in order, into `consume`, with
    `max_outstanding` read requests in flight.

    Args:
        available: for a file still being written, how far it may be read (see `Available`);
            None means all `size` bytes are there.

    Raises:
        ShortRead: the server answered a read with fewer bytes (the caller falls back).
        NoMoreData: `available` says the file will not grow to `size`.
    """
    pending: deque[tuple[int, int, int]] = deque()
    next_off = 0
    limit = size if available is None else min(size, available(0, False))
    try:
        while next_off < size or pending:
            if available is not None and next_off >= limit and next_off < size:
                limit = min(size, available(next_off, not pending))
                if limit <= next_off and not pending:
                    raise NoMoreData(f"file stopped growing at {limit} of {size} bytes")
            while next_off < limit and len(pending) < max_outstanding:
                n = min(request_size, limit - next_off)
                num = sftp._async_request(type(None), CMD_READ, handle, int64(next_off), n)
                pending.append((num, next_off, n))
                next_off += n
            if not pending:
                continue
            num, off, n = pending.popleft()
            t, msg = sftp._read_response(num)
            if t != CMD_DATA or msg is None:
                raise paramiko.SFTPError("expected data in reply to a read")
            data = msg.get_string()
            if len(data) != n:
                raise ShortRead(off)
            consume(data)
    except BaseException:
        # collect what is still in flight so the session stays usable for the caller
        for num, _, _ in pending:
            try:
                sftp._read_response(num)
            except (OSError, EOFError, paramiko.SSHException):
                break
        raise
