"""The local side of a shipment: which bytes go out, under which name, with what metadata.

`prepare_source` refuses what AEP cannot ingest (missing, not a regular file, 0 bytes),
gzips into a staging file when asked (deterministic: mtime 0, so a resumed upload of the same
source re-creates identical bytes), and picks up the validator's row count and contract from a
validation report beside it when present (`<stem>.report.json` next to the validator's
`<stem>.valid.csv`, or `<file>.report.json`), refusing files the report marks failed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backfill.ship.errors import SourceRefused

__all__ = ["FileMeta", "PreparedSource", "prepare_source", "read_sidecar", "sidecar_path"]

log = logging.getLogger(__name__)

Compression = Literal["none", "gzip"]
GZIP_LEVEL = 6


@dataclass(frozen=True)
class FileMeta:
    """What the validator knows about a file: valid rows and the contract (export kind)."""

    rows: int | None = None
    contract: str | None = None


@dataclass(frozen=True)
class PreparedSource:
    """The bytes to upload and how they relate to the original file."""

    original: Path
    upload_path: Path
    """The file whose bytes are sent: `original`, or its gzip in the staging directory."""
    remote_name: str
    size: int
    mtime_ns: int
    compression: Compression
    meta: FileMeta


def sidecar_path(path: Path) -> Path | None:
    """The validation report beside `path`: `<stem>.report.json` for the validator's
    `<stem>.valid.csv`, else `<name>.report.json`; None when neither exists."""
    candidates = [path.with_name(path.name + ".report.json")]
    if path.name.endswith(".valid.csv"):
        candidates.insert(0, path.with_name(path.name.removesuffix(".valid.csv") + ".report.json"))
    return next((c for c in candidates if c.is_file()), None)


def read_sidecar(path: Path) -> FileMeta:
    """Row count and contract from the validation report beside `path`, if present.

    Reads the validator's `rows_valid` and `kind` (also `rows`/`valid_rows` and `contract`);
    anything else leaves the field unknown.

    Raises:
        SourceRefused: the report says validation failed this file (never shipped).
    """
    sidecar = sidecar_path(path)
    if sidecar is None:
        return FileMeta()
    try:
        raw = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable report %s: %s", sidecar, exc)
        return FileMeta()
    if not isinstance(raw, dict):
        return FileMeta()
    if raw.get("status") not in (None, "validated"):
        raise SourceRefused(
            f"{path}: {sidecar.name} says validation status is {raw.get('status')!r}; "
            "only validated files are shipped"
        )
    rows = None
    for key in ("rows_valid", "rows", "valid_rows"):
        if isinstance(raw.get(key), int) and not isinstance(raw.get(key), bool):
            rows = raw[key]
            break
    contract = raw.get("contract") or raw.get("kind")
    return FileMeta(rows=rows, contract=contract if isinstance(contract, str) else None)


def _staged_gzip(path: Path, size: int, mtime_ns: int, staging_dir: Path) -> Path:
    ident = hashlib.sha256(f"{path.resolve()}|{size}|{mtime_ns}".encode()).hexdigest()[:16]
    target = staging_dir / ident / (path.name + ".gz")
    if target.is_file():
        return target  # made by an earlier (possibly killed) run of the same source
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    # filename="" and mtime=0: the same input always gives the same bytes
    with (
        path.open("rb") as src,
        tmp.open("wb") as raw_out,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw_out, compresslevel=GZIP_LEVEL, mtime=0
        ) as out,
    ):
        shutil.copyfileobj(src, out, 1 << 20)
    os.replace(tmp, target)
    return target


def prepare_source(
    path: Path,
    *,
    gzip_it: bool,
    staging_dir: Path,
    meta: FileMeta | None = None,
) -> PreparedSource:
    """Check `path` and decide the bytes and name that go out.

    Args:
        gzip_it: compress into `staging_dir` first; the remote name gets `.gz`.
        meta: rows/contract from the caller; if None, read from the sidecar report.

    Raises:
        SourceRefused: missing, not a regular file, or 0 bytes.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceRefused(f"{path}: no such file") from None
    except OSError as exc:
        raise SourceRefused(f"{path}: cannot read ({exc.strerror})") from None
    if not path.is_file():
        raise SourceRefused(f"{path}: not a regular file")
    if st.st_size == 0:
        raise SourceRefused(f"{path}: 0 bytes; AEP cannot ingest empty files, refusing to ship it")
    meta = meta if meta is not None else read_sidecar(path)
    if not gzip_it:
        return PreparedSource(path, path, path.name, st.st_size, st.st_mtime_ns, "none", meta)
    staged = _staged_gzip(path, st.st_size, st.st_mtime_ns, staging_dir)
    return PreparedSource(
        path, staged, path.name + ".gz", staged.stat().st_size, st.st_mtime_ns, "gzip", meta
    )
