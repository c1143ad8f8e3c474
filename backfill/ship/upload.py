"""Delivering one file: temporary name, pipelined resumable write, verification, atomic rename.

The remote file only ever appears under its final name through a rename of a complete,
verified temporary file in the same directory:

1. `.<name>.<token>.part` — a dot name ending in `.part`, which AEP's `*.csv`-style patterns
   never match — is written with pipelined requests of the server's preferred size
   (pipeline.py); the acknowledged offset is recorded in the journal every `checkpoint_bytes`
   but at most every `checkpoint_interval_s`.
2. After a dropped connection (or a killed process) the same temporary file is resumed from
   min(its remote size, the confirmed offset), truncated there first.
3. The remote size is compared; with `verify="sha256"` the file is read back (pipelined
   reads) and compared byte for byte with the local file, so its sha256 is the local one the
   manifest records. A mismatch deletes it and fails the attempt (the next starts at byte 0).
4. `posix-rename` to the final name (atomic, replaces). Without that extension: a plain
   rename, which fails rather than overwrite; if the final name is taken, a rename to a fresh
   timestamped name. Never remove-then-rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import posixpath
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from backfill.ship import verify as verify_mod
from backfill.ship.connect import ConnectionHolder, SftpConnection, translate_errors
from backfill.ship.errors import RemoteRefused, ShipError, VerifyFailed
from backfill.ship.journal import Journal, JournalEntry, journal_key
from backfill.ship.pipeline import PipelinedWriter
from backfill.ship.source import PreparedSource

__all__ = [
    "CHECKPOINT_BYTES",
    "CHECKPOINT_INTERVAL_S",
    "LOCAL_CHUNK",
    "Delivered",
    "ProgressFn",
    "backoff_s",
    "deliver_once",
    "is_retryable",
    "temp_name_for",
]

log = logging.getLogger(__name__)

LOCAL_CHUNK = 1 << 20
"""Bytes read from the local file and handed to one pipelined write call."""
OVERLAP_MIN_BYTES = 16 << 20
"""Files at least this large are verified on a second connection while they are written
(so up to 2 x `connections` connections are open); smaller ones are read back afterwards."""
CHECKPOINT_BYTES = 8 << 20
"""Record the acknowledged offset in the journal after this many more bytes..."""
CHECKPOINT_INTERVAL_S = 0.5
"""...but not more often than this: a journal write (JSON, then a rename over the old file,
which ext4 flushes) stalls the upload loop; every 8 MiB at ~500 MB/s cost ~8 % of a 1 GB
upload on loopback. A resume loses at most this long's worth of transfer."""

ProgressFn = Callable[[str, int, int], None]
"""Called as `progress(remote_name, position, size)` while a file is written (the position
goes back when an attempt resumes from an earlier confirmed offset)."""

Verify = Literal["sha256", "size"]
VerifiedBy = Literal["overlapped", "read-back", "size"]
"""How a delivery was checked: compared while written on a second connection, compared after
the upload, or by size only."""


def temp_name_for(remote_name: str) -> str:
    """A fresh temporary name beside the final one that no AEP file pattern matches."""
    return f".{remote_name}.{secrets.token_hex(4)}.part"


@dataclass(frozen=True)
class Delivered:
    """Outcome of one successful attempt."""

    final_path: str
    sha256: str
    resumed_from: int
    renamed_by: Literal["posix-rename", "rename", "rename-unique", "already-there"]
    verified_by: VerifiedBy = "size"


class _BackgroundSha256:
    """sha256 computed on another thread: hashlib releases the GIL on large buffers, so the
    local hash overlaps with paramiko's packet work instead of adding to it."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._t = threading.Thread(target=self._run, name="ship-sha256", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (data := self._q.get()) is not None:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._q.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._h.hexdigest()

    def close(self) -> None:
        if self._t.is_alive():
            self._q.put(None)
            self._t.join()


def _stat_size(conn: SftpConnection, path: str) -> int | None:
    try:
        return int(conn.sftp.stat(path).st_size or 0)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise


def _overlapped_result(verifier: verify_mod.OverlappedVerifier) -> tuple[bool, int | None]:
    """(finished, first differing offset) of the overlapped comparison."""
    try:
        return True, verifier.result(timeout_s=None)
    except Exception as exc:
        log.info("overlapped verification failed (%s); reading back again", exc)
        return False, None


def _unique_final(final_path: str) -> str:
    directory, name = posixpath.split(final_path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem, dot, ext = name.partition(".")
    unique = f"{stem}.{stamp}-{secrets.token_hex(3)}{dot}{ext}"
    return posixpath.join(directory, unique)


def _rename_into_place(conn: SftpConnection, temp: str, final: str) -> tuple[str, str]:
    if conn.posix_rename is not False:
        try:
            conn.sftp.posix_rename(temp, final)
            conn.posix_rename = True
            return final, "posix-rename"
        except OSError as exc:
            if conn.posix_rename is True:
                raise
            # first use on this connection: the server may not offer the extension
            log.info("posix-rename refused by %s (%s); using rename", conn.spec.host, exc)
            conn.posix_rename = False
    try:
        conn.sftp.rename(temp, final)
        return final, "rename"
    except OSError:
        if _stat_size(conn, final) is None:
            raise
    # the final name is taken and the server cannot replace atomically: never remove it
    # first (a window with no file, or a reader seeing a half state); take a fresh name
    unique = _unique_final(final)
    conn.sftp.rename(temp, unique)
    return unique, "rename-unique"


def deliver_once(
    conn: SftpConnection,
    src: PreparedSource,
    remote_dir: str,
    *,
    journal: Journal,
    verify: Verify,
    progress: ProgressFn | None = None,
    checkpoint_bytes: int = CHECKPOINT_BYTES,
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    overlap_min_bytes: int = OVERLAP_MIN_BYTES,
    verify_holder: ConnectionHolder | None = None,
) -> Delivered:
    """One attempt at delivering `src` into `remote_dir` over `conn`.

    Args:
        verify_holder: the second connection for overlapped verification, kept by the caller
            across files; None opens (and closes) one for this file.

    Raises:
        TransferFailed: connection lost or timed out (retryable; progress is kept).
        VerifyFailed: the remote bytes differ (retryable; the temporary file was removed).
        RemoteRefused: the server refused an operation (not retryable).
    """
    final = posixpath.join(remote_dir, src.remote_name)
    key = journal_key(final, src.upload_path, src.size, src.mtime_ns)
    entry = journal.get(key)
    with translate_errors(f"delivering {src.original.name} to {final}", conn):
        if entry and entry.done and entry.sha256 and entry.final_path:
            if _stat_size(conn, entry.final_path) == src.size:
                return Delivered(entry.final_path, entry.sha256, 0, "already-there", "size")
            entry = None
        if entry is None:
            entry = JournalEntry(
                final, posixpath.join(remote_dir, temp_name_for(src.remote_name)), src.size
            )
            journal.put(key, entry)
        remote_size = _stat_size(conn, entry.temp_path)
        offset = min(remote_size or 0, entry.confirmed)
        h = _BackgroundSha256()
        with contextlib.ExitStack() as stack:
            stack.callback(h.close)
            local = stack.enter_context(src.upload_path.open("rb"))
            if offset:
                remaining = offset
                while remaining:
                    data = local.read(min(LOCAL_CHUNK, remaining))
                    if not data:
                        raise ShipError(f"{src.upload_path} shrank while shipping")
                    h.update(data)
                    remaining -= len(data)
                f = conn.sftp.open(entry.temp_path, "r+b")
                f.truncate(offset)
                f.seek(offset)
                log.info("resuming %s at byte %d of %d", final, offset, src.size)
            else:
                f = conn.sftp.open(entry.temp_path, "wb")
            verifier = None
            if verify == "sha256" and src.size >= overlap_min_bytes:
                if verify_holder is None:
                    verify_holder = ConnectionHolder(conn.spec)
                    stack.callback(verify_holder.close)
                verifier = verify_mod.OverlappedVerifier(
                    verify_holder,
                    entry.temp_path,
                    src.upload_path,
                    src.size,
                    verify_mod.AckedPrefix(offset),
                )
                verifier.start()
                stack.callback(verifier.acked.close)
            try:
                w = PipelinedWriter(
                    conn.sftp, f.handle, offset=offset, request_size=conn.request_size
                )
                last_checkpoint = time.monotonic()
                if progress:
                    progress(src.remote_name, offset, src.size)
                while True:
                    data = local.read(LOCAL_CHUNK)
                    if not data:
                        break
                    h.update(data)
                    w.write(data)
                    if verifier:
                        verifier.acked.publish(w.confirmed)
                    if progress:
                        progress(src.remote_name, w.offset, src.size)
                    if (
                        w.confirmed - entry.confirmed >= checkpoint_bytes
                        and time.monotonic() - last_checkpoint >= checkpoint_interval_s
                    ):
                        last_checkpoint = time.monotonic()
                        # the acknowledged prefix, recorded without stalling the pipe
                        entry.confirmed = w.confirmed
                        journal.put(key, entry)
                w.drain()
                pos = w.offset
                if verifier:
                    verifier.acked.publish(pos)
            except BaseException:
                if verifier:
                    verifier.cancel()
                raise
            finally:
                with contextlib.suppress(Exception):
                    f.close()
        if pos != src.size:
            raise ShipError(f"{src.upload_path} changed size while shipping ({pos} != {src.size})")
        entry.confirmed = pos
        journal.put(key, entry)
        sha = h.hexdigest()
        got = _stat_size(conn, entry.temp_path)
        if got != src.size:
            journal.drop(key)
            with contextlib.suppress(OSError):
                conn.sftp.remove(entry.temp_path)
            raise VerifyFailed(f"{entry.temp_path}: remote size {got}, local {src.size}")
        verified_by: VerifiedBy = "size"
        if verify == "sha256":
            done, diff = _overlapped_result(verifier) if verifier else (False, None)
            verified_by = "overlapped" if done else "read-back"
            if not done:
                diff = verify_mod.first_difference(conn, entry.temp_path, src.upload_path, src.size)
            if diff is not None:
                journal.drop(key)
                with contextlib.suppress(OSError):
                    conn.sftp.remove(entry.temp_path)
                raise VerifyFailed(
                    f"{entry.temp_path}: read back differs from {src.upload_path} at byte "
                    f"{diff} (sha256 would not match {sha}); removed, will upload again"
                )
        final_path, how = _rename_into_place(conn, entry.temp_path, final)
        entry.done, entry.final_path, entry.sha256 = True, final_path, sha
        journal.put(key, entry)
    return Delivered(final_path, sha, offset, how, verified_by)  # type: ignore[arg-type]


def backoff_s(attempt: int, *, base: float = 0.5, cap: float = 10.0) -> float:
    """Capped exponential backoff before attempt `attempt + 1`."""
    return min(cap, base * (2 ** (attempt - 1)))


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt could succeed."""
    return isinstance(exc, ShipError) and exc.retryable and not isinstance(exc, RemoteRefused)
