"""Read-back verification: the remote temporary file compared byte for byte with the local one.

Two ways, same comparison:

- `first_difference` reads the whole file back after the upload, on the upload's connection;
- `OverlappedVerifier` reads it back *while* it is written, on a second connection (a second
  server process, kept by the caller from one file to the next), never past the offset the
  server has acknowledged; after
  the last write only the tail is left to compare. Used for large files, where it saves
  most of the read-back's wall time; if it fails for any reason other than a difference, the
  caller falls back to `first_difference`.

Identical bytes mean the remote sha256 is the local one the manifest records; comparing
bytes instead of hashing the read-back saves a second sha256 pass.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import BinaryIO

from backfill.ship.connect import ConnectionHolder, SftpConnection, translate_errors
from backfill.ship.errors import ShipError
from backfill.ship.pipeline import ShortRead, pipelined_read

__all__ = ["LOCAL_CHUNK", "AckedPrefix", "OverlappedVerifier", "first_difference"]

log = logging.getLogger(__name__)

LOCAL_CHUNK = 1 << 20


class _Comparer:
    """Compares remote bytes, in order, with the local file; remembers the first difference."""

    def __init__(self, local: BinaryIO) -> None:
        self._local = local
        self._buf = bytearray()
        self.offset = 0
        self.mismatch: int | None = None

    def __call__(self, data: bytes) -> None:
        if self.mismatch is not None:
            return
        # read into one reused buffer: a fresh 256 KiB `bytes` per reply costs page faults
        if len(self._buf) != len(data):
            self._buf = bytearray(len(data))
        got = self._local.readinto(self._buf)
        mine = self._buf if got == len(data) else self._buf[:got]
        if mine != data:
            n = min(len(mine), len(data))
            first = next((i for i in range(n) if mine[i] != data[i]), n)
            self.mismatch = self.offset + first
        self.offset += len(data)


def first_difference(conn: SftpConnection, path: str, local_path: Path, size: int) -> int | None:
    """Read the remote file back and compare it with the local one.

    Returns:
        The offset of the first differing byte, or None when the first `size` bytes match.
    """
    with local_path.open("rb") as local, conn.sftp.open(path, "rb") as f:
        cmp = _Comparer(local)
        try:
            pipelined_read(conn.sftp, f.handle, size, cmp, request_size=conn.request_size)
        except ShortRead:
            # a server capping reads below its stated limit: paramiko's reader copes
            local.seek(0)
            cmp = _Comparer(local)
            f.seek(0)
            f.prefetch(size, max_concurrent_requests=64)
            while cmp.offset < size:
                data = f.read(min(LOCAL_CHUNK, size - cmp.offset))
                if not data:
                    return cmp.offset
                cmp(data)
    return cmp.mismatch


class AckedPrefix:
    """The acknowledged length of a file being written, shared by writer and verifier."""

    def __init__(self, value: int) -> None:
        self._value = value
        self._closed = False
        self._cond = threading.Condition()

    def publish(self, value: int) -> None:
        """The server has acknowledged everything below `value`."""
        with self._cond:
            if value > self._value:
                self._value = value
                self._cond.notify_all()

    def close(self) -> None:
        """No more data will come (upload finished or abandoned)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def available(self, offset: int, block: bool) -> int:
        """`pipeline.Available`: the acknowledged length, waiting for more if `block`."""
        with self._cond:
            while block and self._value <= offset and not self._closed:
                self._cond.wait(1.0)
            return self._value


class OverlappedVerifier:
    """Compares a remote file with the local one on a second connection while it is written.

    The connection comes from `holder` (opened if needed); after any failure it is closed, so
    the next file starts on a fresh one.
    """

    def __init__(
        self,
        holder: ConnectionHolder,
        remote_path: str,
        local_path: Path,
        size: int,
        acked: AckedPrefix,
    ) -> None:
        self._holder = holder
        self._remote = remote_path
        self._local = local_path
        self._size = size
        self.acked = acked
        self.mismatch: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ship-verify", daemon=True)

    def start(self) -> None:
        """Connect and start comparing in the background."""
        self._thread.start()

    def _run(self) -> None:
        conn: SftpConnection | None = None
        try:
            conn = self._holder.get()
            with self._local.open("rb") as local:
                cmp = _Comparer(local)
                with (
                    translate_errors(f"verifying {self._remote}", conn),
                    conn.sftp.open(self._remote, "rb") as f,
                ):
                    pipelined_read(
                        conn.sftp,
                        f.handle,
                        self._size,
                        cmp,
                        request_size=conn.request_size,
                        available=self.acked.available,
                    )
                self.mismatch = cmp.mismatch
        except Exception as exc:  # reported to the caller, never lost in a thread
            self.error = exc
            # the session may hold unread replies or be half-dead: never reuse it
            self._holder.close(only=conn)

    def result(self, timeout_s: float | None = None) -> int | None:
        """Wait for the comparison; the first differing offset or None.

        Raises:
            The verifier's own failure (connection, short read...): the caller falls back.
        """
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise ShipError(f"verification of {self._remote} did not finish in time")
        if self.error is not None:
            raise self.error
        return self.mismatch

    def cancel(self) -> None:
        """Stop early (the upload failed); returns once the thread is gone or after 10 s
        (then its connection is closed under it, so the next file cannot share it)."""
        self.acked.close()
        self._thread.join(10)
        if self._thread.is_alive():
            self._holder.close()
