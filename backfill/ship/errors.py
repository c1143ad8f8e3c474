"""The one exception tree of shipping; paramiko's exceptions never leave this package.

```
ShipError                      base of everything ship raises on purpose
├── ConnectFailed              TCP connect, banner or SSH handshake failed or timed out
├── HostKeyError               the server's host key could not be trusted
│   ├── UnknownHostKey         no known_hosts entry for host:port
│   └── HostKeyMismatch        known_hosts pins another key (possible man in the middle)
├── AuthFailed                 the server refused our key/password, or the key cannot be loaded
├── RemoteRefused              the server answered an operation with an error (EACCES, ENOENT…)
├── TransferFailed             a file could not be delivered after every attempt
│   └── VerifyFailed           the uploaded bytes differ from the local ones
├── SourceRefused              a local file cannot be shipped (0 bytes, missing, not a file)
└── StateBusy                  another process is shipping with the same state directory
```

Retryability is a property of the type (`retryable`): a dropped connection or a timeout is
worth another attempt; a wrong host key, a refused key or an empty file never is.
"""

from __future__ import annotations

__all__ = [
    "AuthFailed",
    "ConnectFailed",
    "HostKeyError",
    "HostKeyMismatch",
    "RemoteRefused",
    "ShipError",
    "SourceRefused",
    "StateBusy",
    "TransferFailed",
    "UnknownHostKey",
    "VerifyFailed",
]


class ShipError(Exception):
    """Base of the errors raised by `backfill.ship` and `backfill.sftpd`."""

    retryable: bool = False


class ConnectFailed(ShipError):
    """The server could not be reached, or did not answer within the timeout."""

    retryable = True


class HostKeyError(ShipError):
    """The server's host key is not trusted."""

    def __init__(self, message: str, *, host: str, port: int, offered: str) -> None:
        super().__init__(message)
        self.host = host
        self.port = port
        self.offered = offered


class UnknownHostKey(HostKeyError):
    """known_hosts has no entry for this host and port; nothing is ever auto-added."""


class HostKeyMismatch(HostKeyError):
    """known_hosts pins a different key for this host and port."""

    def __init__(
        self, message: str, *, host: str, port: int, offered: str, expected: list[str]
    ) -> None:
        super().__init__(message, host=host, port=port, offered=offered)
        self.expected = expected


class AuthFailed(ShipError):
    """The server refused the credentials, or the private key could not be loaded."""


class RemoteRefused(ShipError):
    """The server refused an SFTP operation (permission denied, no such directory, ...)."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class TransferFailed(ShipError):
    """A file was not delivered after the allowed attempts (the last cause is chained)."""

    retryable = True


class VerifyFailed(TransferFailed):
    """The remote temporary file's size or sha256 differs from the local file's."""


class SourceRefused(ShipError):
    """A local file cannot be shipped: missing, not a regular file, or 0 bytes."""


class StateBusy(ShipError):
    """Another process holds the state directory's ship journal (one ship at a time per
    state directory: two would overwrite each other's resume progress)."""

    def __init__(self, message: str, *, holder_pid: int | None = None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid
