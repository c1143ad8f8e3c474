"""The `aep-sync run` daemon: apply at start and every N minutes, watch every M seconds.

One APScheduler 3.x `BlockingScheduler` in one process: job `apply` (first run at start) and
job `watch`, on a single worker thread so they never overlap (they share the client and the
history). Job defaults are set scheduler-wide (`coalesce`, `max_instances=1`, a misfire grace
longer than APScheduler's 1 s default, which would silently skip runs of a busy process).

Only one daemon acts per state directory: `DaemonLock` holds an exclusive `flock` on
`<state_dir>/sync/daemon.lock` (the holder's pid written in it); a second daemon, or an
`aep-sync apply` while a daemon runs, gets `DaemonLocked` and exits with its own code. APScheduler installs no signal handlers: SIGTERM
and SIGINT shut the scheduler down here, letting a running job finish, and the command exits 0.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]

from aep.client import PlatformClient
from aep.errors import AEPError
from config.loader import ConfigError
from sync.apply import apply
from sync.desired import DesiredState
from sync.history import History
from sync.plan import Plan, SyncError
from sync.watch import WatchReport, watch

__all__ = ["LOCK_FILE", "CycleResult", "Daemon", "DaemonLock", "DaemonLocked"]

logger = logging.getLogger("sync.daemon")

LOCK_FILE = "daemon.lock"
MISFIRE_GRACE_S = 300


class DaemonLocked(Exception):
    """Another `aep-sync run` (or `apply`) holds this state directory's lock."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(
            f"another aep-sync daemon or apply (pid {holder or 'unknown'}) holds {path}; only "
            "one may act per state directory: stop it first, or see what it did with "
            "`aep-sync status`"
        )
        self.path = path
        self.holder = holder


class DaemonLock:
    """An exclusive, non-blocking `flock` on `<state_dir>/sync/daemon.lock`.

    The kernel drops the lock when the process dies, so a crashed daemon never leaves a stale
    lock behind.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "sync" / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> DaemonLock:
        """Take the lock.

        Raises:
            DaemonLocked: another process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DaemonLocked(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class CycleResult:
    """One apply and one watch."""

    applied: Plan | None
    apply_error: str | None
    watched: WatchReport | None
    watch_error: str | None

    @property
    def ok(self) -> bool:
        """Both jobs finished."""
        return self.apply_error is None and self.watch_error is None


class Daemon:
    """The jobs and their schedule.

    Args:
        client: the Platform client.
        desired: the desired dataflows.
        history: the sync history.
        apply_every_min: minutes between applies (the first runs at start).
        watch_every_s: seconds between watches.
        reload: reads the flows file again; called before each scheduled apply, so an edited
            file takes effect without a restart (a file with problems is logged and the last
            good desired state kept).
    """

    def __init__(
        self,
        client: PlatformClient,
        desired: DesiredState,
        history: History,
        *,
        apply_every_min: float,
        watch_every_s: float,
        reload: Callable[[], DesiredState] | None = None,
    ) -> None:
        self.reload = reload
        self.client = client
        self.desired = desired
        self.history = history
        self.apply_every_min = apply_every_min
        self.watch_every_s = watch_every_s
        self.scheduler: BlockingScheduler | None = None

    def reload_desired(self) -> None:
        """Take up an edited flows file; keep the last good state if it has problems."""
        if self.reload is None:
            return
        try:
            fresh = self.reload()
        except ConfigError as exc:
            logger.error("flows file not reloaded, keeping the last good one: %s", exc)
            return
        if fresh != self.desired:
            logger.info("flows file changed: %d flow(s) desired", len(fresh.flows))
            self.desired = fresh

    def apply_job(self) -> Plan | None:
        """Apply once; a failure is logged and recorded, never raised (the next run retries)."""
        self.reload_desired()
        try:
            done = apply(self.client, self.desired, self.history, trigger="daemon")
        except (SyncError, AEPError) as exc:
            logger.error("apply failed: %s", exc)
            return None
        logger.info("apply: %s", done.counts())
        return done

    def watch_job(self) -> WatchReport | None:
        """Watch once; a failure is logged, never raised."""
        try:
            return watch(self.client, self.desired, self.history)
        except AEPError as exc:
            logger.error("watch failed: %s", exc)
            return None

    def run_once(self) -> CycleResult:
        """One apply, then one watch (`aep-sync run --once`)."""
        apply_error = watch_error = None
        applied = watched = None
        try:
            applied = apply(self.client, self.desired, self.history, trigger="daemon")
        except (SyncError, AEPError) as exc:
            apply_error = str(exc)
            logger.error("apply failed: %s", exc)
        try:
            watched = watch(self.client, self.desired, self.history)
        except AEPError as exc:
            watch_error = str(exc)
            logger.error("watch failed: %s", exc)
        return CycleResult(applied, apply_error, watched, watch_error)

    def run_forever(self) -> None:
        """Run the schedule until SIGTERM or SIGINT; returns after a clean shutdown."""
        scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_S,
            },
        )
        now = datetime.now().astimezone()
        scheduler.add_job(
            self.apply_job,
            "interval",
            minutes=self.apply_every_min,
            next_run_time=now,
            id="apply",
            replace_existing=True,
        )
        scheduler.add_job(
            self.watch_job,
            "interval",
            seconds=self.watch_every_s,
            next_run_time=now + timedelta(seconds=1),
            id="watch",
            replace_existing=True,
        )
        self.scheduler = scheduler
        with _stop_on_signals(scheduler):
            logger.info(
                "daemon started: apply every %s min, watch every %s s",
                self.apply_every_min,
                self.watch_every_s,
            )
            scheduler.start()  # blocks until shutdown
        logger.info("daemon stopped")


@contextlib.contextmanager
def _stop_on_signals(scheduler: BlockingScheduler) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("signal %d: shutting down after the running job", signum)
        scheduler.shutdown(wait=True)

    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
