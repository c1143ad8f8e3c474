"""The embedded SFTP server of the default mode (paramiko, loopback only, key auth, rooted).

`EmbeddedSftpServer(root, host_key_path, authorized_keys, port=0).start()` returns the port;
`embedded_server(state_dir)` also makes the keys and yields a ready `ConnectSpec`.
"""

from __future__ import annotations

from backfill.sftpd.default import embedded_server, is_embedded
from backfill.sftpd.fs import PathRefused, RootedSftp
from backfill.sftpd.keys import (
    EmbeddedCredentials,
    ensure_embedded_credentials,
    ensure_private_key,
    write_known_hosts,
)
from backfill.sftpd.server import EmbeddedSftpServer

__all__ = [
    "EmbeddedCredentials",
    "EmbeddedSftpServer",
    "PathRefused",
    "RootedSftp",
    "embedded_server",
    "ensure_embedded_credentials",
    "ensure_private_key",
    "is_embedded",
    "write_known_hosts",
]
