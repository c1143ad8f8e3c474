"""The resume journal: per file, its temporary remote name and the offset the server confirmed.

A small JSON file in the state directory (`<state_dir>/ship/progress.json`), rewritten
atomically (temp file + `os.replace`) at each checkpoint, so that a process killed mid-upload
resumes the same temporary file from its confirmed prefix instead of starting over. Entries
are keyed by the final remote path and the local file's identity (path, size, mtime): a
changed local file never resumes onto stale remote bytes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Journal", "JournalEntry", "journal_key"]

log = logging.getLogger(__name__)
_VERSION = 1


def journal_key(remote_path: str, local: Path, size: int, mtime_ns: int) -> str:
    """The identity of one upload: where it goes and which local bytes it carries."""
    return f"{remote_path}|{local.resolve()}|{size}|{mtime_ns}"


@dataclass
class JournalEntry:
    """Progress of one upload."""

    remote_path: str
    temp_path: str
    size: int
    confirmed: int = 0
    """Bytes of the temporary file the server acknowledged (a prefix of the local bytes)."""
    done: bool = False
    final_path: str | None = None
    sha256: str | None = None


class Journal:
    """Thread-safe view of the journal file; every change is persisted before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, JournalEntry] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                if raw.get("version") == _VERSION:
                    self._entries = {k: JournalEntry(**v) for k, v in raw["files"].items()}
            except (OSError, ValueError, TypeError, KeyError) as exc:
                # a corrupt journal only costs a restart from byte 0, never wrong data:
                # the uploaded bytes are verified before any rename
                log.warning("ignoring unreadable ship journal %s: %s", path, exc)

    def get(self, key: str) -> JournalEntry | None:
        """The entry for `key`, if any (a copy)."""
        with self._lock:
            entry = self._entries.get(key)
            return JournalEntry(**asdict(entry)) if entry else None

    def put(self, key: str, entry: JournalEntry) -> None:
        """Store `entry` and persist."""
        with self._lock:
            self._entries[key] = JournalEntry(**asdict(entry))
            self._save()

    def drop(self, key: str) -> None:
        """Forget `key` and persist."""
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        data = {"version": _VERSION, "files": {k: asdict(v) for k, v in self._entries.items()}}
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
