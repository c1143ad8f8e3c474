"""Pipelined SFTP writes and reads with a sliding window of outstanding requests.

paramiko's own pipelining (`SFTPFile.set_pipelined`) lets up to 100 write requests pile up and
then waits for *all* of them, so the pipe empties every 100 requests (a round trip lost each
time), and it gives no acknowledged offset short of a full drain. Its read prefetch runs a
polling thread. Here, as in OpenSSH's sftp client, a fixed number of requests stays in flight
and each reply is collected as it arrives, in order:

- `PipelinedWriter.confirmed` is always the end of the longest acknowledged prefix, which the
  resume journal records without stalling the pipe;
- `pipelined_read` streams a remote file to a consumer from in-order replies.

This module is the only one touching paramiko's request internals (`_async_request`,
`_read_response`): both are stable from paramiko 3.x through 5.1 and used the same way by
paramiko's own `SFTPFile`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import paramiko
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, CMD_WRITE, int64

__all__ = [
    "MAX_OUTSTANDING",
    "Available",
    "NoMoreData",
    "PipelinedWriter",
    "ShortRead",
    "install_zero_copy_send",
    "pipelined_read",
]

MAX_OUTSTANDING = 64
"""Requests in flight per file (OpenSSH's sftp default is 64 too)."""


def install_zero_copy_send(sftp: paramiko.SFTPClient) -> None:
    """Make `sftp` send packets through a memoryview.

    paramiko's `BaseSFTP._write_all` re-slices the unsent rest of a request as `bytes` after
    every channel send (32 KiB with OpenSSH), copying a 256 KiB write request ~4 times over.
    Same loop, same errors, no copies.
    """
    chan = sftp.sock

    def write_all(out: bytes) -> None:
        view = memoryview(out)
        while len(view) > 0:
            n = chan.send(view)
            if n <= 0:
                raise EOFError()
            view = view[n:]

    sftp._write_all = write_all  # type: ignore[method-assign]


class ShortRead(Exception):
    """The server returned fewer bytes than asked before the end of the file."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"short read at {offset}")
        self.offset = offset


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
        for i in range(0, len(data), step):
            chunk = data[i : i + step]
            num = self._sftp._async_request(
                type(None), CMD_WRITE, self._handle, int64(self.offset), chunk
            )
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
