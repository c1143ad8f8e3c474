"""Debian's OpenSSH `sshd` as a foreground test server on a free loopback port.

Recipe from the project's research notes (sftp-scheduler.md §3.3): `sshd -D -e -f cfg` with a
host key, authorized_keys and config made in a temporary directory; `StrictModes no` and
`UsePAM no`; `internal-sftp` as the subsystem. The user is the one running the tests (root in
CI); `ForceCommand internal-sftp -d <landing>` starts every session in the landing directory.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SSHD_PATH", "Sshd", "free_port", "keygen", "sshd_available", "start_sshd"]

SSHD_PATH = Path("/usr/sbin/sshd")


def sshd_available() -> bool:
    """Whether OpenSSH's server and ssh-keygen are installed."""
    return SSHD_PATH.exists() and shutil.which("ssh-keygen") is not None


def free_port() -> int:
    """A loopback port that was free a moment ago (sshd has no `Port 0`; the race is small)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(
    path: Path, kind: str = "ed25519", passphrase: str = "", bits: int | None = None
) -> Path:
    """Make a key pair with ssh-keygen; returns the private key's path (public key beside it)."""
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path), "-C", "test"]
    if bits:
        cmd += ["-b", str(bits)]
    if kind == "rsa":
        cmd += ["-m", "PEM"]
    subprocess.run(cmd, check=True)
    path.chmod(0o600)
    return path


@dataclass
class Sshd:
    """A running sshd and everything a client needs to reach it."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key: Path
    landing: Path
    workdir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def connection_pids(self) -> list[int]:
        """Pids of sshd's per-connection children (kill one to drop a connection)."""
        children: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the comm field may contain spaces; ppid is the 2nd field after the closing paren
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                children.append(int(entry.name))
        return children

    def kill_connections(self) -> int:
        """SIGKILL every per-connection process; returns how many were killed."""
        pids = self.connection_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        """Stop the listener and its children."""
        self.kill_connections()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_sshd(
    workdir: Path,
    *,
    sftp_flags: str = "",
    client_key_type: str = "ed25519",
    client_key_passphrase: str = "",
    host_key_type: str = "ed25519",
    password_auth: bool = False,
) -> Sshd:
    """Start sshd in `workdir` (made here) and wait until it answers with its SSH banner.

    Args:
        sftp_flags: extra flags of `internal-sftp`, e.g. `-P posix-rename` to deny a request.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    host_key = keygen(workdir / "hostkey", host_key_type)
    client_key = keygen(workdir / "client_key", client_key_type, client_key_passphrase)
    authorized = workdir / "authorized_keys"
    authorized.write_text((workdir / "client_key.pub").read_text())
    landing = workdir / "landing"
    landing.mkdir(exist_ok=True)
    port = free_port()
    log = workdir / "sshd.log"
    cfg = workdir / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                f"PasswordAuthentication {'yes' if password_auth else 'no'}",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin yes",
                "UsePAM no",
                "StrictModes no",
                "ClientAliveInterval 5",
                "MaxStartups 100",
                "MaxSessions 100",
                f"Subsystem sftp internal-sftp {sftp_flags}".rstrip(),
                f"ForceCommand internal-sftp -d {landing} {sftp_flags}".rstrip(),
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    pub = (workdir / "hostkey.pub").read_text().split()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    with log.open("wb") as logf:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [str(SSHD_PATH), "-D", "-e", "-f", str(cfg)], stdout=logf, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sshd did not start: {log.read_text()}")
        time.sleep(0.05)
    return Sshd(
        host="127.0.0.1",
        port=port,
        user=getpass.getuser(),
        client_key=client_key,
        known_hosts=known_hosts,
        host_key=host_key,
        landing=landing,
        workdir=workdir,
        proc=proc,
        log=log,
    )
