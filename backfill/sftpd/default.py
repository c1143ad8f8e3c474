"""The embedded default mode: start the embedded server in the state directory and hand back
a `ConnectSpec` that reaches it (generated client key, pinned host key).

Used when `sftp.port = 0` (the shipped config/local.toml): no real landing zone is configured,
so files land in `<state_dir>/sftp/<remote_root>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import paramiko

from backfill.sftpd.keys import ensure_embedded_credentials, write_known_hosts
from backfill.sftpd.server import EmbeddedSftpServer
from backfill.ship.connect import ConnectSpec
from config.settings import SftpSettings

__all__ = ["embedded_server", "is_embedded"]


def is_embedded(s: SftpSettings) -> bool:
    """Port 0 means: no landing zone configured, run the embedded server."""
    return s.port == 0


@contextlib.contextmanager
def embedded_server(
    state_dir: Path, sftp: SftpSettings | None = None, *, port: int = 0
) -> Iterator[tuple[EmbeddedSftpServer, ConnectSpec]]:
    """Run the embedded server for the duration of the block.

    Yields:
        The running server, and a `ConnectSpec` for it (user, timeouts and keepalive from
        `sftp` when given), with the known_hosts entry written for the actual port.
    """
    creds = ensure_embedded_credentials(state_dir)
    server = EmbeddedSftpServer(creds.root, creds.host_key, creds.authorized_keys, port=port)
    bound = server.start()
    try:
        host_key = server.host_key
        assert isinstance(host_key, paramiko.PKey)
        write_known_hosts(creds.known_hosts, server.host, bound, host_key)
        base = sftp or SftpSettings()
        spec = ConnectSpec(
            host=server.host,
            port=bound,
            user=base.user,
            known_hosts=creds.known_hosts,
            key_path=creds.client_key,
            timeout_s=base.timeout_s,
            keepalive_s=base.keepalive_s,
        )
        yield server, spec
    finally:
        server.stop()
