"""Host keys: fingerprints, known_hosts lookup, fetching a server's key, pinning it on request.

Nothing here trusts a key by itself: `fetch_host_key` only reports what a server offers, and
`pin_host_key` writes it only when the caller (the `trust-host` command, after the user agreed)
asks. Connections verify against the known_hosts file with `HostKeyPolicy` (connect.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from backfill.ship.errors import ConnectFailed, ShipError

__all__ = [
    "OfferedKey",
    "PinResult",
    "fetch_host_key",
    "fingerprint",
    "host_entry_name",
    "known_keys",
    "pin_host_key",
]

log = logging.getLogger(__name__)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint: `SHA256:` + unpadded base64 of the key blob's sha256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_entry_name(host: str, port: int) -> str:
    """The name known_hosts uses: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def _load(path: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    if path.exists():
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise ShipError(f"cannot read known_hosts file {path}: {exc}") from None
    return keys


def known_keys(known_hosts: Path, host: str, port: int) -> list[paramiko.PKey]:
    """Keys pinned for host:port in `known_hosts` (empty when none or the file is missing)."""
    entry = _load(known_hosts).lookup(host_entry_name(host, port))
    return list(entry.values()) if entry else []


@dataclass(frozen=True)
class OfferedKey:
    """What a server presented during the key exchange."""

    host: str
    port: int
    key_type: str
    fingerprint: str
    line: str
    """The known_hosts line that would pin it."""
    key: paramiko.PKey


def fetch_host_key(host: str, port: int, *, timeout_s: float = 15.0) -> OfferedKey:
    """Run the key exchange only (no authentication) and return the key the server offers.

    Raises:
        ConnectFailed: the server is unreachable or does not speak SSH within the timeout.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout_s
    try:
        transport.start_client(timeout=timeout_s)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectFailed(f"SSH handshake with {host}:{port} failed: {exc}") from None
    finally:
        transport.close()
        sock.close()
    name = host_entry_name(host, port)
    return OfferedKey(
        host=host,
        port=port,
        key_type=key.get_name(),
        fingerprint=fingerprint(key),
        line=f"{name} {key.get_name()} {key.get_base64()}",
        key=key,
    )


@dataclass(frozen=True)
class PinResult:
    """Outcome of `pin_host_key`: `added`, `already` (same key pinned) or `replaced`."""

    action: str
    known_hosts: Path
    line: str
    previous: list[str]
    """Fingerprints pinned before, for the host:port."""


def pin_host_key(known_hosts: Path, offered: OfferedKey, *, replace: bool = False) -> PinResult:
    """Write `offered` into `known_hosts` (created 0600 if missing).

    Args:
        replace: drop other keys pinned for the same host:port; without it a different
            pinned key makes this raise instead.

    Raises:
        ShipError: another key is pinned and `replace` is False.
    """
    name = host_entry_name(offered.host, offered.port)
    previous = known_keys(known_hosts, offered.host, offered.port)
    prev_fps = [fingerprint(k) for k in previous]
    if any(k.asbytes() == offered.key.asbytes() for k in previous) and len(previous) == 1:
        return PinResult("already", known_hosts, offered.line, prev_fps)
    if previous and not replace:
        raise ShipError(
            f"{known_hosts} already pins {', '.join(prev_fps)} for {name}; the server offers "
            f"{offered.fingerprint}. Re-run with --replace only if you know the key changed."
        )
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    if known_hosts.exists():
        for raw in known_hosts.read_text().splitlines():
            names = raw.split(" ", 1)[0].split(",") if raw and not raw.startswith("#") else []
            if name in names:
                continue  # replaced below
            lines.append(raw)
    lines.append(offered.line)
    tmp = known_hosts.with_name(known_hosts.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, known_hosts)
    action = "replaced" if previous else "added"
    log.info("pinned %s %s in %s (%s)", name, offered.fingerprint, known_hosts, action)
    return PinResult(action, known_hosts, offered.line, prev_fps)
