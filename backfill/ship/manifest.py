"""The run manifest: one JSON document listing what was delivered, written after the files.

Its presence means every file it names is complete under its final name (it is itself
uploaded under a temporary name and renamed). It records what the dataflow must be created to
match: the compression (`gzip` → `compressionType: gzip`), plus size, sha256, rows and contract
for reconciliation. A run with any failed file writes no manifest.
"""

from __future__ import annotations

import io
import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backfill.ship.connect import SftpConnection, translate_errors
from backfill.ship.upload import temp_name_for

__all__ = ["ManifestEntry", "manifest_document", "manifest_name", "upload_manifest"]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestEntry:
    """One delivered file as the manifest lists it."""

    name: str
    size: int
    sha256: str
    rows: int | None
    contract: str | None
    compression: str
    source: str


def manifest_name(run_id: str) -> str:
    """Remote file name of a run's manifest (never matches a `*.csv` pattern)."""
    return f"manifest-{run_id}.json"


def manifest_document(run_id: str, remote_dir: str, entries: list[ManifestEntry]) -> dict[str, Any]:
    """The manifest as a JSON-ready dict."""
    return {
        "version": MANIFEST_VERSION,
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "remote_dir": remote_dir,
        "files": [e.__dict__ for e in entries],
    }


def upload_manifest(conn: SftpConnection, remote_dir: str, document: dict[str, Any]) -> str:
    """Upload `document` as `manifest-<run_id>.json` via a temporary name; returns its path."""
    name = manifest_name(document["run_id"])
    final = posixpath.join(remote_dir, name)
    temp = posixpath.join(remote_dir, temp_name_for(name))
    body = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    with translate_errors(f"writing manifest {final}"):
        conn.sftp.putfo(io.BytesIO(body), temp, confirm=True)
        try:
            conn.sftp.posix_rename(temp, final)
        except OSError:
            conn.sftp.rename(temp, final)  # run ids are unique: the name cannot exist yet
    return final
