"""The resume journal: per file, its temporary remote name and the offset the server confirmed.

A small JSON file in the state directory (`<state_dir>/ship/progress.json`), rewritten
atomically (temp file + `os.replace`) at each checkpoint, so that a process killed mid-upload
resumes the same temporary file from its confirmed prefix instead of starting over. Entries
are keyed by the final remote path and the local file's identity (path, size, mtime): a
changed local file never resumes onto stale remote bytes.

One process at a time: `Journal.open_exclusive` takes an exclusive `flock` on
`progress.json.lock` beside it (released by `close`, or by the kernel when the process dies,
so a killed run never blocks the next); a second `aep-migrate ship` on the same state
directory is refused with `StateBusy` naming the holder's pid instead of interleaving its
rewrites of the journal with the first one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from backfill.ship.errors import StateBusy

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
        self._lock_fd: int | None = None
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                if raw.get("version") == _VERSION:
                    self._entries = {k: JournalEntry(**v) for k, v in raw["files"].items()}
            except (OSError, ValueError, TypeError, KeyError) as exc:
                # a corrupt journal only costs a restart from byte 0, never wrong data:
                # the uploaded bytes are verified before any rename
                log.warning("ignoring unreadable ship journal %s: %s", path, exc)

    @classmethod
    def open_exclusive(cls, path: Path) -> Journal:
        """Lock the journal for this process, then load it.

        Raises:
            StateBusy: another process holds the lock (its pid is in the message).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            pid = int(holder) if holder.isdigit() else None
            who = f"process {pid}" if pid else "another process"
            raise StateBusy(
                f"{who} is already shipping with this state directory ({lock_path} is "
                "locked); wait for it to finish, or give this run its own state_dir",
                holder_pid=pid,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        journal = cls(path)
        journal._lock_fd = fd
        return journal

    def close(self) -> None:
        """Release the lock taken by `open_exclusive` (the journal file stays)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

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
