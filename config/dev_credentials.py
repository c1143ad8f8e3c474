"""Development credentials for embedded mode, generated once per state directory.

Embedded mode needs no secret from the user, yet the emulator still checks credentials and
headers on every call: on first use a client id and secret are generated into
`<state_dir>/credentials/dev-client.json` (mode 0600, directory 0700) and registered with the
emulator; later runs reuse them. (AEP's SFTP pull key in embedded mode belongs to the embedded
SFTP server: `backfill.sftpd` generates and authorises it.) The file is created exclusively
(`O_EXCL`), so two processes starting together agree on one set.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["CREDENTIALS_DIR", "DevCredentials", "ensure_dev_credentials"]

CREDENTIALS_DIR = "credentials"
CLIENT_FILE = "dev-client.json"

logger = logging.getLogger("config.dev_credentials")


@dataclass(frozen=True)
class DevCredentials:
    """The embedded platform's OAuth client."""

    client_id: str
    client_secret: str = field(repr=False)
    path: Path


def _credentials_dir(state_dir: Path) -> Path:
    directory = state_dir / CREDENTIALS_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` with mode 0600 unless it exists; True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _tighten(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("%s was readable by others (mode %o); set to 0600", path, mode)
        os.chmod(path, 0o600)


def ensure_dev_credentials(state_dir: Path) -> DevCredentials:
    """The state directory's development client, generated on first use.

    Raises:
        ValueError: the file exists but is not a credentials file (names the file).
    """
    path = _credentials_dir(state_dir) / CLIENT_FILE
    content = {
        "client_id": f"aep-bridge-dev-{secrets.token_hex(4)}",
        "client_secret": secrets.token_urlsafe(32),
        "created": datetime.now(UTC).isoformat(),
    }
    created = _write_exclusive(path, (json.dumps(content, indent=2) + "\n").encode())
    if created:
        logger.info("generated development credentials in %s", path)
    _tighten(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DevCredentials(str(data["client_id"]), str(data["client_secret"]), path)
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path}: not a development credentials file; delete it to generate a new one"
        ) from None
