"""The background worker: runs due schedules, runs and delayed landings.

Several processes may serve one state directory; only the one holding the lock file
`worker.lock` (fcntl.flock, released when the process ends) does the work. Work waits in the
`pending` table, so whatever one process accepted, the lock holder carries out.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import IO

from emulator import dataflow, streaming
from emulator.config import EmulatorConfig
from emulator.ids import now_ms
from emulator.store import Store

__all__ = ["LOCK_NAME", "Worker"]

LOCK_NAME = "worker.lock"
log = logging.getLogger("emulator.worker")


class Worker:
    """A daemon thread that takes the state directory's lock when free and works off `pending`."""

    def __init__(self, store: Store, config: EmulatorConfig) -> None:
        self.store = store
        self.config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[bytes] | None = None

    @property
    def holds_lock(self) -> bool:
        """True while this worker is the one that runs work for the state directory."""
        return self._lock_file is not None

    def _try_lock(self) -> bool:
        if self._lock_file is not None:
            return True
        path = Path(self.config.state_dir) / LOCK_NAME
        handle = open(path, "a+b")  # noqa: SIM115 - held open for the worker's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._lock_file = handle
        return True

    def run_once(self) -> int:
        """Carry out whatever is due now if this worker holds the lock; returns items handled."""
        if not self._try_lock():
            return 0
        with self.store.tx() as tx:
            due = tx.due_pending(now_ms())
        landings = [w for w in due if w.kind == streaming.LANDING]
        handled = 0
        if landings:
            handled += streaming.land(self.store, landings)
        for work in due:
            if work.kind not in ("schedule", "run") or self._stop.is_set():
                continue
            with self.store.tx() as tx:
                claimed = tx.remove_pending(work.id)
            if claimed:
                dataflow.execute(self.store, work, self.config)
                handled += 1
        return handled

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep serving; the log says what broke
                log.exception("worker iteration failed")
            self._stop.wait(self.config.worker_poll_s)

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="aep-emulator-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
