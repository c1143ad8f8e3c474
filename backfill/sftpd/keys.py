"""Keys of the embedded SFTP server: its host key, the authorized client keys, and the
development client key + known_hosts entry the embedded default mode uses.

Private keys are created with mode 0600 (`O_CREAT | O_EXCL`, never widened) in OpenSSH
format; Ed25519 by default.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from backfill.ship.errors import ShipError
from backfill.ship.hostkeys import host_entry_name

__all__ = [
    "EmbeddedCredentials",
    "ensure_embedded_credentials",
    "ensure_private_key",
    "ensure_rsa_pem_key",
    "load_authorized_keys",
    "public_line",
    "write_known_hosts",
]

log = logging.getLogger(__name__)


def ensure_private_key(path: Path, comment: str = "aep-bridge") -> paramiko.PKey:
    """Load the Ed25519 key at `path`, creating it (mode 0600, `.pub` beside it) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago: use theirs
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            log.info("generated key %s", path)
    try:
        pkey = paramiko.PKey.from_path(path)
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise ShipError(f"cannot load key {path}: {exc}") from None
    pub = path.with_name(path.name + ".pub")
    if not pub.exists():
        pub.write_text(public_line(pkey, comment) + "\n")
    return pkey


def public_line(key: paramiko.PKey, comment: str = "") -> str:
    """`type base64 [comment]`, as in authorized_keys and `.pub` files."""
    return f"{key.get_name()} {key.get_base64()} {comment}".rstrip()


def load_authorized_keys(path: Path) -> list[tuple[str, bytes]]:
    """(key type, key blob) pairs from an OpenSSH authorized_keys file; options are not
    supported and such lines are skipped with a warning."""
    out: list[tuple[str, bytes]] = []
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or not (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-")):
            log.warning("%s:%d: unsupported authorized_keys line skipped", path, n)
            continue
        try:
            out.append((parts[0], base64.b64decode(parts[1], validate=True)))
        except ValueError:
            log.warning("%s:%d: bad base64 key skipped", path, n)
    return out


def write_known_hosts(path: Path, host: str, port: int, key: paramiko.PKey) -> None:
    """Write a known_hosts file holding exactly `key` for host:port (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{host_entry_name(host, port)} {public_line(key)}\n")
    os.replace(tmp, path)


def ensure_rsa_pem_key(path: Path, bits: int = 2048) -> paramiko.RSAKey:
    """Load the RSA key at `path`, creating it (PEM, `BEGIN RSA PRIVATE KEY`, mode 0600) if
    missing: the form AEP's SFTP source asks for its own pull credential."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = paramiko.RSAKey.generate(bits)
        buf = io.StringIO()
        key.write_private_key(buf)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(buf.getvalue())
            log.info("generated RSA key %s", path)
    try:
        return paramiko.RSAKey.from_private_key_file(str(path))
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise ShipError(f"cannot load key {path}: {exc}") from None


@dataclass(frozen=True)
class EmbeddedCredentials:
    """Everything the embedded default needs, all under `<state_dir>/sftp-keys` and
    `<state_dir>/sftp` (the server's root)."""

    root: Path
    host_key: Path
    authorized_keys: Path
    client_key: Path
    """Ed25519 key the uploader (`aep-migrate ship`) logs in with."""
    known_hosts: Path
    aep_pull_key: Path
    """RSA key in PEM form for the pulling side (the emulator standing in for AEP's SFTP
    source, whose key must be RSA PEM); also authorized."""


def ensure_embedded_credentials(state_dir: Path) -> EmbeddedCredentials:
    """Create (once) the host key, a client key and authorized_keys for the embedded server.

    The known_hosts file is written when the server starts, because it names the port.
    """
    keys = state_dir / "sftp-keys"
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    root = state_dir / "sftp"
    root.mkdir(parents=True, exist_ok=True)
    host_key = keys / "host_ed25519"
    ensure_private_key(host_key, "aep-bridge embedded sftp host")
    client_key = keys / "client_ed25519"
    client = ensure_private_key(client_key, "aep-bridge embedded client")
    pull_key = keys / "aep_pull_rsa.pem"
    pull = ensure_rsa_pem_key(pull_key)
    authorized = keys / "authorized_keys"
    present = authorized.read_text() if authorized.exists() else ""
    with authorized.open("a") as out:
        for key, comment in ((client, "aep-bridge embedded client"), (pull, "aep-bridge pull")):
            if key.get_base64() not in present:
                out.write(public_line(key, comment) + "\n")
    return EmbeddedCredentials(
        root, host_key, authorized, client_key, keys / "known_hosts", pull_key
    )
