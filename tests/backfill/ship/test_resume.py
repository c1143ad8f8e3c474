"""Resuming: a connection killed mid-upload, a silent (stopped) connection, a killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from backfill.ship import ConnectSpec, ShipOptions, ship
from tests.backfill.ship.conftest import spec_for
from tests.support.sshd import Sshd

REPO = Path(__file__).resolve().parents[3]
MiB = 1 << 20


def test_connection_killed_mid_upload_resumes_byte_identical(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("big.csv", 6 * MiB + 123)
    killed: list[int] = []

    def kill_midway(name: str, pos: int, size: int) -> None:
        time.sleep(0.02)  # a slower link: acknowledgements arrive while we send
        if pos >= 3 * MiB and not killed:
            killed.append(sshd.kill_connections())
            time.sleep(0.2)  # let the transport notice

    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "state",
        options=ShipOptions(
            remote_dir=str(sshd.landing),
            checkpoint_bytes=MiB,
            checkpoint_interval_s=0,
            backoff_base_s=0.05,
        ),
        progress=kill_midway,
    )
    assert killed and killed[0] >= 1
    f = result.files[0]
    assert result.ok, result.asdict()
    assert f.attempts == 2
    assert MiB <= f.resumed_from <= 3 * MiB  # continued from the confirmed prefix
    assert (sshd.landing / "big.csv").read_bytes() == src.read_bytes()
    assert not [p for p in sshd.landing.iterdir() if p.name.endswith(".part")]


def test_silent_connection_times_out_and_resumes(
    sshd: Sshd, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("s.csv", 4 * MiB)
    stopped: list[int] = []

    def freeze_midway(name: str, pos: int, size: int) -> None:
        if pos >= 2 * MiB and not stopped:
            for pid in sshd.connection_pids():  # the server stops answering, socket stays open
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)

    started = time.monotonic()
    try:
        result = ship(
            [src],
            spec_for(sshd, timeout_s=1.0),
            state_dir=tmp_path / "state",
            options=ShipOptions(
                remote_dir=str(sshd.landing),
                checkpoint_bytes=MiB,
                checkpoint_interval_s=0,
                backoff_base_s=0.05,
            ),
            progress=freeze_midway,
        )
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
    assert stopped
    assert result.ok, result.asdict()
    assert result.files[0].attempts >= 2
    assert time.monotonic() - started < 30
    assert (sshd.landing / "s.csv").read_bytes() == src.read_bytes()


def _confirmed(journal: Path) -> int:
    try:
        files = json.loads(journal.read_text())["files"]
    except (OSError, ValueError, KeyError):
        return 0
    return max((e["confirmed"] for e in files.values()), default=0)


def test_killed_process_resumes_from_recorded_progress(
    sshd: Sshd, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("huge.csv", 8 * MiB + 7)
    state = tmp_path / "state"
    journal = state / "ship" / "progress.json"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.backfill.ship._slow_ship",
            sshd.host,
            str(sshd.port),
            sshd.user,
            str(sshd.client_key),
            str(sshd.known_hosts),
            str(src),
            str(sshd.landing),
            str(state),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while _confirmed(journal) < 3 * MiB:
            assert child.poll() is None, "helper exited before it was killed"
            assert time.monotonic() < deadline, "no progress recorded"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    recorded = _confirmed(journal)
    assert not (sshd.landing / "huge.csv").exists()  # killed before the rename
    result = ship(
        [src],
        spec_for(sshd),
        state_dir=state,
        options=ShipOptions(
            remote_dir=str(sshd.landing), checkpoint_bytes=MiB, checkpoint_interval_s=0
        ),
    )
    f = result.files[0]
    assert result.ok, result.asdict()
    assert f.attempts == 1 and f.resumed_from >= recorded >= 3 * MiB
    assert (sshd.landing / "huge.csv").read_bytes() == src.read_bytes()
    assert not [p for p in sshd.landing.iterdir() if p.name.endswith(".part")]


def test_attempts_are_bounded_when_the_connection_keeps_dropping(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("doomed.csv", 3 * MiB)

    def always_kill(name: str, pos: int, size: int) -> None:
        if pos >= MiB:
            sshd.kill_connections()
            time.sleep(0.1)

    started = time.monotonic()
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "state",
        options=ShipOptions(remote_dir=str(sshd.landing), max_attempts=3, backoff_base_s=0.05),
        progress=always_kill,
    )
    f = result.files[0]
    assert not result.ok and f.status == "failed" and f.attempts == 3
    assert "after 3 attempt(s)" in (f.error or "") and "connection lost" in (f.error or "")
    assert not (sshd.landing / "doomed.csv").exists()
    assert result.manifest_path is None
    assert time.monotonic() - started < 20
