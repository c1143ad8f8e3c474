"""`ship`: deliver many files over up to N parallel connections, then write the manifest.

How many connections: parallel connections only pay when one connection waits on the link
(its rate is capped at the server's window per round trip: 2 MiB / 50 ms = 42 MB/s); on a
short round trip one connection already moves what this client's CPU can (~450-500 MB/s,
one core of paramiko work) and more only compete for the same cores (measured on a 2-core
loopback: 20 files, 4 connections 10-30 % slower than 1). So the first connection times a
few round trips and `connections_for` opens as many as fill the link, at most `connections`.

Each worker thread owns one connection and takes the next file from a queue (largest first).
A retryable failure closes the connection, waits (capped exponential backoff) and resumes the
same file on a fresh connection, up to `max_attempts`. A host key or authentication failure
stops every worker: no later file could succeed either.
"""

from __future__ import annotations

import logging
import math
import posixpath
import queue
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from backfill.ship.connect import (
    ConnectionHolder,
    ConnectSpec,
    SftpConnection,
    translate_errors,
)
from backfill.ship.errors import AuthFailed, HostKeyError, RemoteRefused, ShipError
from backfill.ship.journal import Journal
from backfill.ship.manifest import ManifestEntry, manifest_document, upload_manifest
from backfill.ship.source import FileMeta, PreparedSource, prepare_source
from backfill.ship.upload import (
    CHECKPOINT_BYTES,
    CHECKPOINT_INTERVAL_S,
    OVERLAP_MIN_BYTES,
    ProgressFn,
    Verify,
    backoff_s,
    deliver_once,
    is_retryable,
)

__all__ = [
    "ONE_CONNECTION_RATE",
    "FileResult",
    "ShipOptions",
    "ShipResult",
    "connections_for",
    "expand_inputs",
    "ship",
]

log = logging.getLogger(__name__)

FileStatus = Literal["shipped", "already-there", "failed"]

ONE_CONNECTION_RATE = 500e6
"""Bytes/s one connection of this client moves when not waiting on the link (paramiko's
per-packet work holds one core: ~450-480 MB/s measured against OpenSSH on loopback)."""


def connections_for(limit: int, files: int, round_trip_s: float, window: int) -> int:
    """How many connections to open: enough that `ONE_CONNECTION_RATE` is not held back by
    `window` bytes per `round_trip_s`, never more than `limit` or `files`, at least one."""
    needed = math.ceil(round_trip_s * ONE_CONNECTION_RATE / max(window, 1))
    return max(1, min(limit, files, needed))


@dataclass(frozen=True)
class ShipOptions:
    """How to ship (defaults follow `SftpSettings`)."""

    remote_dir: str = "/landing"
    connections: int = 4
    verify: Verify = "sha256"
    gzip: bool = False
    max_attempts: int = 5
    checkpoint_bytes: int = CHECKPOINT_BYTES
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
    """Journal writes at most this often (with `checkpoint_bytes`: whichever comes later)."""
    overlap_min_bytes: int = OVERLAP_MIN_BYTES
    """Files this large or larger are verified while written, on a second connection."""
    adapt_connections: bool = True
    """Open only as many of `connections` as the measured round trip needs
    (`connections_for`); False always opens `connections` (one per file at most)."""
    backoff_base_s: float = 0.5
    write_manifest: bool = True


@dataclass
class FileResult:
    """What happened to one local file."""

    source: str
    status: FileStatus
    remote_path: str | None = None
    size: int | None = None
    sha256: str | None = None
    compression: str = "none"
    rows: int | None = None
    contract: str | None = None
    attempts: int = 0
    resumed_from: int = 0
    renamed_by: str | None = None
    verified_by: str | None = None
    """`overlapped` (compared on a second connection while written), `read-back` (compared
    after the upload) or `size`."""
    seconds: float = 0.0
    error: str | None = None


@dataclass
class ShipResult:
    """What a `ship` call did; `ok` when every file is under its final name."""

    run_id: str
    remote_dir: str
    files: list[FileResult] = field(default_factory=list)
    manifest_path: str | None = None
    seconds: float = 0.0
    connections: int = 0
    """Connections used for uploads (each also opens one for overlapped verification)."""
    round_trip_ms: float | None = None
    """Shortest of a few SFTP round trips on the first connection."""

    @property
    def ok(self) -> bool:
        """Every file delivered (shipped now or already there)."""
        return all(f.status != "failed" for f in self.files)

    @property
    def bytes_shipped(self) -> int:
        """Bytes of the files delivered by this run (not counting ones already there)."""
        return sum(f.size or 0 for f in self.files if f.status == "shipped")

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form (what `--json` prints)."""
        return {
            "run_id": self.run_id,
            "remote_dir": self.remote_dir,
            "ok": self.ok,
            "manifest": self.manifest_path,
            "seconds": round(self.seconds, 3),
            "bytes_shipped": self.bytes_shipped,
            "connections": self.connections,
            "round_trip_ms": self.round_trip_ms,
            "files": [asdict(f) for f in self.files],
        }


_NOT_DATA = (".report.json", ".part", ".tmp")


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus the data files directly inside directories, in order.

    In a directory holding the validator's output (any `*.valid.csv`), only the
    `*.valid.csv` files are data (rejects, warnings and excluded rows stay home); elsewhere
    every regular, non-hidden file except reports (`*.report.json`) and temporary files.
    """
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        children = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
        valid = [c for c in children if c.name.endswith(".valid.csv")]
        if valid:
            out.extend(valid)
        else:
            out.extend(
                c
                for c in children
                if not c.name.endswith(_NOT_DATA) and c.name != "validate-report.json"
            )
    return out


def _round_trip_s(conn: SftpConnection, path: str, samples: int = 3) -> float:
    """The shortest of `samples` SFTP stat round trips (the least disturbed by other load)."""
    best = math.inf
    with translate_errors(f"timing round trips to {conn.spec.host}", conn):
        for _ in range(samples):
            t0 = time.perf_counter()
            conn.sftp.stat(path)
            best = min(best, time.perf_counter() - t0)
    return best


def _ensure_dir(conn: SftpConnection, remote_dir: str) -> None:
    with translate_errors(f"creating {remote_dir}"):
        parts = [p for p in remote_dir.split("/") if p]
        path = "/" if remote_dir.startswith("/") else ""
        for part in parts:
            path = posixpath.join(path, part) if path else part
            try:
                conn.sftp.stat(path)
            except FileNotFoundError:
                conn.sftp.mkdir(path)


def ship(
    paths: Sequence[Path],
    spec: ConnectSpec,
    *,
    state_dir: Path,
    options: ShipOptions | None = None,
    meta: Mapping[Path, FileMeta] | None = None,
    progress: ProgressFn | None = None,
    run_id: str | None = None,
) -> ShipResult:
    """Deliver `paths` (files) into `options.remote_dir` on the server `spec` names.

    Args:
        state_dir: where the resume journal and gzip staging live (`<state_dir>/ship/`).
        meta: rows and contract per local path; files not in it use their sidecar report.
        progress: called from worker threads as `progress(remote_name, position, size)`.
        run_id: names the manifest; a fresh one by default.

    Returns:
        One `FileResult` per path (in the given order) and the manifest's remote path.

    Raises:
        HostKeyError, AuthFailed: the server cannot be trusted or refused us (nothing shipped
            after that point).
        ConnectFailed: the server could not be reached at all, even once.
        StateBusy: another process is shipping with the same `state_dir`.
    """
    started = time.monotonic()
    journal = Journal.open_exclusive(state_dir / "ship" / "progress.json")
    try:
        return _ship(paths, spec, journal, state_dir, options, meta, progress, run_id, started)
    finally:
        journal.close()


def _ship(
    paths: Sequence[Path],
    spec: ConnectSpec,
    journal: Journal,
    state_dir: Path,
    options: ShipOptions | None,
    meta: Mapping[Path, FileMeta] | None,
    progress: ProgressFn | None,
    run_id: str | None,
    started: float,
) -> ShipResult:
    """`ship` with the journal locked for this process."""
    opts = options or ShipOptions()
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    result = ShipResult(run_id=run_id, remote_dir=opts.remote_dir)
    work = state_dir / "ship"
    staging = work / "staging"
    results: list[FileResult | None] = [None] * len(paths)
    prepared: list[tuple[int, PreparedSource]] = []
    for i, p in enumerate(paths):
        try:
            src = prepare_source(
                p, gzip_it=opts.gzip, staging_dir=staging, meta=(meta or {}).get(p)
            )
        except ShipError as exc:
            results[i] = FileResult(source=str(p), status="failed", error=str(exc))
            continue
        prepared.append((i, src))
    prepared.sort(key=lambda item: -item[1].size)

    first = ConnectionHolder(spec)
    n = max(1, min(opts.connections, len(prepared)))
    for attempt in range(1, opts.max_attempts + 1):
        try:
            conn = first.get()
            _ensure_dir(conn, opts.remote_dir)
            if opts.adapt_connections and n > 1:
                rtt = _round_trip_s(conn, opts.remote_dir)
                result.round_trip_ms = round(rtt * 1000, 3)
                n = connections_for(n, len(prepared), rtt, conn.send_window)
            break
        except ShipError as exc:
            first.close()
            if not is_retryable(exc) or attempt == opts.max_attempts:
                raise
            log.warning("connecting (attempt %d) failed: %s", attempt, exc)
            time.sleep(backoff_s(attempt, base=opts.backoff_base_s))
    jobs: queue.Queue[tuple[int, PreparedSource]] = queue.Queue()
    for item in prepared:
        jobs.put(item)
    stop = threading.Event()
    fatal: list[BaseException] = []

    def run_file(
        holder: ConnectionHolder, verify_holder: ConnectionHolder, src: PreparedSource
    ) -> FileResult:
        res = FileResult(
            source=str(src.original),
            status="failed",
            size=src.size,
            compression=src.compression,
            rows=src.meta.rows,
            contract=src.meta.contract,
        )
        t0 = time.monotonic()
        last: ShipError | None = None
        while res.attempts < opts.max_attempts and not stop.is_set():
            res.attempts += 1
            try:
                done = deliver_once(
                    holder.get(),
                    src,
                    opts.remote_dir,
                    journal=journal,
                    verify=opts.verify,
                    progress=progress,
                    checkpoint_bytes=opts.checkpoint_bytes,
                    checkpoint_interval_s=opts.checkpoint_interval_s,
                    overlap_min_bytes=opts.overlap_min_bytes,
                    verify_holder=verify_holder,
                )
            except (HostKeyError, AuthFailed):
                stop.set()
                raise
            except ShipError as exc:
                last = exc
                holder.close()
                log.warning("%s: attempt %d failed: %s", src.remote_name, res.attempts, exc)
                if not is_retryable(exc) or isinstance(exc, RemoteRefused):
                    break
                if res.attempts < opts.max_attempts:
                    stop.wait(backoff_s(res.attempts, base=opts.backoff_base_s))
                continue
            res.status = "already-there" if done.renamed_by == "already-there" else "shipped"
            res.remote_path, res.sha256 = done.final_path, done.sha256
            res.resumed_from, res.renamed_by = done.resumed_from, done.renamed_by
            res.verified_by = done.verified_by
            break
        if res.status == "failed":
            res.error = f"after {res.attempts} attempt(s): {last}" if last else "stopped"
        res.seconds = time.monotonic() - t0
        return res

    def worker(holder: ConnectionHolder) -> None:
        # the second connection of this worker, for overlapped verification: kept from one
        # file to the next (a handshake per file cost ~50 ms of CPU on each side)
        verify_holder = ConnectionHolder(spec)
        try:
            while not stop.is_set():
                try:
                    index, src = jobs.get_nowait()
                except queue.Empty:
                    return
                results[index] = run_file(holder, verify_holder, src)
        except BaseException as exc:  # surfaced by the caller thread
            fatal.append(exc)
            stop.set()
        finally:
            verify_holder.close()

    result.connections = n
    log.info("%d connection(s) (round trip %s ms)", n, result.round_trip_ms)
    holders = [first] + [ConnectionHolder(spec) for _ in range(n - 1)]
    threads = [
        threading.Thread(target=worker, args=(h,), name=f"ship-{k}", daemon=True)
        for k, h in enumerate(holders)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if fatal:
            raise fatal[0]
        return _finish(result, results, paths, opts, run_id, first, started)
    finally:
        for h in holders:
            h.close()


def _finish(
    result: ShipResult,
    results: list[FileResult | None],
    paths: Sequence[Path],
    opts: ShipOptions,
    run_id: str,
    holder: ConnectionHolder,
    started: float,
) -> ShipResult:
    """Collect the per-file results and write the manifest (on `holder`'s connection)."""
    result.files = [
        r if r is not None else FileResult(source=str(paths[i]), status="failed", error="stopped")
        for i, r in enumerate(results)
    ]
    if opts.write_manifest and result.ok and result.files:
        entries = [
            ManifestEntry(
                name=posixpath.basename(f.remote_path or ""),
                size=f.size or 0,
                sha256=f.sha256 or "",
                rows=f.rows,
                contract=f.contract,
                compression=f.compression,
                source=Path(f.source).name,
            )
            for f in result.files
        ]
        result.manifest_path = upload_manifest(
            holder.get(), opts.remote_dir, manifest_document(run_id, opts.remote_dir, entries)
        )
    result.seconds = time.monotonic() - started
    return result
