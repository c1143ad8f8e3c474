"""Opening one SFTP connection: TCP_NODELAY socket, timeouts, keepalive, verified host key, auth.

This is the boundary where paramiko's exceptions become ours (`translate_errors`); nothing
above it catches `paramiko.*`. `ConnectSpec` is the plain-data view of `SftpSettings` the
uploader needs (so the embedded server's generated credentials can be swapped in).
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko
from paramiko.sftp import CMD_EXTENDED

from backfill.ship.errors import (
    AuthFailed,
    ConnectFailed,
    HostKeyMismatch,
    RemoteRefused,
    ShipError,
    TransferFailed,
    UnknownHostKey,
)
from backfill.ship.hostkeys import fingerprint, host_entry_name
from backfill.ship.packets import LeanPacketizer
from backfill.ship.pipeline import install_fast_io
from config.settings import SftpSettings

__all__ = [
    "DEFAULT_REQUEST_SIZE",
    "MAX_REQUEST_SIZE",
    "ConnectSpec",
    "ConnectionHolder",
    "SftpConnection",
    "open_connection",
    "translate_errors",
]

log = logging.getLogger(__name__)

DEFAULT_REQUEST_SIZE = 32768
"""SFTP read/write request size when the server does not state its limits (paramiko's)."""
MAX_REQUEST_SIZE = 256 * 1024
"""Upper bound on the request size, even when a server's `limits@openssh.com` allows more."""
READ_WINDOW = 8 * 1024 * 1024
"""SSH channel window we grant the server: bounds read-back speed on long links (window/RTT);
paramiko's 2 MiB default caps a 50 ms round trip at ~40 MB/s. Not larger: paramiko's receive
buffer copies its remainder on every read, so a buffer that fills up (fast links) costs CPU."""
READ_PACKET = 256 * 1024 - 1024
"""Largest SSH data packet we accept: 8x fewer packets than paramiko's 32 KiB default for the
read-back, whose cost is paramiko's per-packet work (measured ~300 -> ~450 MB/s on loopback)."""
_CMD_EXTENDED_REPLY = 201


@dataclass(frozen=True)
class ConnectSpec:
    """Where and how to connect; built from `SftpSettings` with `ConnectSpec.from_settings`."""

    host: str
    port: int
    user: str
    known_hosts: Path
    key_path: Path | None = None
    key_passphrase: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    keepalive_s: int = 15
    large_requests: bool = True
    """Use the server's `limits@openssh.com` request size (up to 256 KiB) instead of 32 KiB."""

    def __repr__(self) -> str:  # secrets never reach logs
        return (
            f"ConnectSpec(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"key_path={self.key_path!r}, known_hosts={self.known_hosts!r})"
        )

    @classmethod
    def from_settings(cls, s: SftpSettings) -> ConnectSpec:
        """Build from the `[sftp]` settings section.

        Raises:
            ShipError: no known_hosts file is configured (host keys are always verified).
        """
        if s.known_hosts is None:
            raise ShipError(
                "sftp.known_hosts is not set: host keys are always verified. Point it at a "
                "known_hosts file and pin the server with `aep-migrate trust-host HOST[:PORT]`."
            )
        return cls(
            host=s.host,
            port=s.port,
            user=s.user,
            known_hosts=s.known_hosts,
            key_path=s.key_path,
            key_passphrase=s.key_passphrase.get_secret_value() if s.key_passphrase else None,
            password=s.password.get_secret_value() if s.password else None,
            timeout_s=s.timeout_s,
            keepalive_s=s.keepalive_s,
        )

    def with_(self, **changes: object) -> ConnectSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


class _FastTransport(paramiko.Transport):
    """paramiko's Transport preferring AES-GCM, where the server offers it, with a leaner
    packetizer for it (packets.py).

    paramiko lists the GCM ciphers last; as AEAD they cost one pass through OpenSSL instead of
    AES-CTR plus a separate HMAC, which measured here ~1.2x faster writes and ~1.7x faster
    read-back against OpenSSH (bench/ship/RESULTS.md). Servers without GCM negotiate as before.
    """

    _preferred_ciphers = (
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        *(c for c in paramiko.Transport._preferred_ciphers if "gcm" not in c),
    )

    def __init__(self, sock: socket.socket, **kwargs: object) -> None:
        # packets.LeanPacketizer: the same packets with less Python work each
        super().__init__(sock, packetizer_class=LeanPacketizer, **kwargs)  # type: ignore[arg-type]


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse hosts missing from known_hosts, naming the command that pins them."""

    def __init__(self, spec: ConnectSpec) -> None:
        self._spec = spec

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):  # type: ignore[no-untyped-def]
        spec = self._spec
        raise UnknownHostKey(
            f"host key of {host_entry_name(spec.host, spec.port)} is not in {spec.known_hosts} "
            f"(server offers {key.get_name()} {fingerprint(key)}). Check that fingerprint with "
            f"the server's owner, then run `aep-migrate trust-host {spec.host}:{spec.port}`.",
            host=spec.host,
            port=spec.port,
            offered=fingerprint(key),
        )


@contextlib.contextmanager
def translate_errors(what: str, conn: SftpConnection | None = None) -> Iterator[None]:
    """Re-raise paramiko/socket errors raised inside as our own types, `from` the original.

    Connection-level failures (dropped, timed out, protocol) become `TransferFailed`
    (retryable); an SFTP status error (the server answered "no") becomes `RemoteRefused`.
    paramiko raises a bare `OSError(text)` both for some status errors and for a closed
    socket, so with `conn` given a dead transport decides: then it is `TransferFailed`.
    """
    try:
        yield
    except ShipError:
        raise
    except OSError as exc:
        if conn is not None and not conn.alive() and not isinstance(exc, TimeoutError):
            raise TransferFailed(f"{what}: connection lost ({exc})") from exc
        raise _translate_os_error(what, exc) from exc
    except (EOFError, paramiko.SSHException) as exc:
        raise TransferFailed(f"{what}: connection lost ({exc or type(exc).__name__})") from exc


def _translate_os_error(what: str, exc: OSError) -> ShipError:
    if isinstance(exc, TimeoutError):
        return TransferFailed(f"{what}: timed out ({exc or 'no answer'})")
    if isinstance(exc, ConnectionError):
        return TransferFailed(f"{what}: connection lost ({exc or type(exc).__name__})")
    if exc.errno in (errno_mod.EACCES, errno_mod.ENOENT, errno_mod.EEXIST, errno_mod.EPERM):
        return RemoteRefused(f"{what}: {exc.strerror or exc}", errno=exc.errno)
    if exc.errno is None and exc.args and isinstance(exc.args[0], str):
        # paramiko maps SSH_FX_FAILURE & co. to IOError(text) without an errno
        return RemoteRefused(f"{what}: {exc.args[0]}")
    return TransferFailed(f"{what}: {exc}")


@dataclass
class SftpConnection:
    """One SSH transport with one SFTP session on it."""

    spec: ConnectSpec
    client: paramiko.SSHClient
    sftp: paramiko.SFTPClient
    request_size: int
    send_window: int = 2 * 1024 * 1024
    """The server's initial channel window: bytes in flight before it must answer (OpenSSH:
    2 MiB), which with the round trip bounds one connection's upload rate."""
    posix_rename: bool | None = None
    """Whether the server accepts posix-rename; None until first tried."""

    def close(self) -> None:
        """Close the session and the transport; never raises."""
        with contextlib.suppress(Exception):
            self.sftp.close()
        with contextlib.suppress(Exception):
            self.client.close()

    def alive(self) -> bool:
        """Whether the transport is still up."""
        transport = self.client.get_transport()
        return bool(transport and transport.is_active())

    def __enter__(self) -> SftpConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ConnectionHolder:
    """The connection one thread owns, opened on first use and replaced once it is dead."""

    def __init__(self, spec: ConnectSpec) -> None:
        self.spec = spec
        self.conn: SftpConnection | None = None

    def get(self) -> SftpConnection:
        """The live connection, (re)opened if needed.

        Raises:
            ConnectFailed / UnknownHostKey / HostKeyMismatch / AuthFailed: as `open_connection`.
        """
        if self.conn is None or not self.conn.alive():
            self.close()
            self.conn = open_connection(self.spec)
        return self.conn

    def close(self, only: SftpConnection | None = None) -> None:
        """Close the held connection (with `only`: just if it is still that one)."""
        conn = self.conn
        if conn is not None and (only is None or conn is only):
            self.conn = None
            conn.close()


def _load_key(spec: ConnectSpec) -> paramiko.PKey | None:
    if spec.key_path is None:
        return None
    try:
        password = spec.key_passphrase.encode() if spec.key_passphrase else None
        return paramiko.PKey.from_path(spec.key_path, password)
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        # cryptography raises TypeError for "encrypted but no password" (and the reverse)
        if spec.key_passphrase and "not encrypted" in str(exc):
            raise AuthFailed(
                f"private key {spec.key_path} is not encrypted: unset its passphrase"
            ) from None
        raise AuthFailed(
            f"private key {spec.key_path} is encrypted: set its passphrase in "
            "AEP_BRIDGE_SFTP__KEY_PASSPHRASE"
        ) from None
    except FileNotFoundError:
        raise AuthFailed(f"private key {spec.key_path} does not exist") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        hint = " (wrong passphrase?)" if spec.key_passphrase else ""
        raise AuthFailed(f"cannot load private key {spec.key_path}{hint}: {exc}") from None


def _query_request_size(sftp: paramiko.SFTPClient) -> int:
    """Ask `limits@openssh.com` for the server's max read/write length; 32 KiB if unknown."""
    try:
        t, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
    except (OSError, paramiko.SSHException):
        return DEFAULT_REQUEST_SIZE
    if t != _CMD_EXTENDED_REPLY or msg is None:
        return DEFAULT_REQUEST_SIZE
    msg.get_int64()  # max packet length
    max_read = msg.get_int64()
    max_write = msg.get_int64()
    size = min(x for x in (max_read, max_write, MAX_REQUEST_SIZE) if x > 0)
    return max(DEFAULT_REQUEST_SIZE, size)


def open_connection(spec: ConnectSpec) -> SftpConnection:
    """Connect, verify the host key against `spec.known_hosts`, authenticate, open SFTP.

    Raises:
        ConnectFailed: unreachable, refused, or silent beyond `timeout_s`.
        UnknownHostKey / HostKeyMismatch: the host key is not the pinned one.
        AuthFailed: credentials refused or unusable.
    """
    where = f"{spec.host}:{spec.port}"
    pkey = _load_key(spec)
    if pkey is None and spec.password is None:
        raise AuthFailed("no credential: set sftp.key_path or AEP_BRIDGE_SFTP__PASSWORD")
    try:
        sock = socket.create_connection((spec.host, spec.port), timeout=spec.timeout_s)
    except OSError as exc:
        raise ConnectFailed(f"cannot connect to {where}: {exc}") from None
    # paramiko sets no socket options; without NODELAY request/reply patterns stall ~40 ms
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    client = paramiko.SSHClient()
    if spec.known_hosts.exists():
        client.get_host_keys().load(str(spec.known_hosts))
    client.set_missing_host_key_policy(_RefuseUnknown(spec))
    try:
        client.connect(
            spec.host,
            port=spec.port,
            username=spec.user,
            pkey=pkey,
            password=spec.password if pkey is None else None,
            sock=sock,
            timeout=spec.timeout_s,
            banner_timeout=spec.timeout_s,
            auth_timeout=spec.timeout_s,
            channel_timeout=spec.timeout_s,
            allow_agent=False,
            look_for_keys=False,
            transport_factory=_FastTransport,
        )
    except ShipError:
        client.close()
        sock.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        sock.close()
        expected = [fingerprint(exc.expected_key)]
        offered = fingerprint(exc.key)
        raise HostKeyMismatch(
            f"HOST KEY MISMATCH for {host_entry_name(spec.host, spec.port)}: {spec.known_hosts} "
            f"expects {exc.expected_key.get_name()} {expected[0]}, the server offered "
            f"{exc.key.get_name()} {offered}. Someone may be intercepting the connection, or "
            f"the server's key changed. Refusing to connect; if the change is legitimate, "
            f"run `aep-migrate trust-host {spec.host}:{spec.port} --replace`.",
            host=spec.host,
            port=spec.port,
            offered=offered,
            expected=expected,
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        sock.close()
        raise AuthFailed(f"{where} refused user {spec.user!r}: {exc}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        client.close()
        sock.close()
        raise ConnectFailed(
            f"SSH handshake with {where} failed: {exc or type(exc).__name__}"
        ) from None
    transport = client.get_transport()
    assert transport is not None
    if spec.keepalive_s > 0:
        transport.set_keepalive(spec.keepalive_s)
    try:
        with translate_errors(f"opening SFTP on {where}"):
            sftp = paramiko.SFTPClient.from_transport(
                transport, window_size=READ_WINDOW, max_packet_size=READ_PACKET
            )
            assert sftp is not None
            install_fast_io(sftp)
            sftp.get_channel().settimeout(spec.timeout_s)  # type: ignore[union-attr]
            size = _query_request_size(sftp) if spec.large_requests else DEFAULT_REQUEST_SIZE
    except ShipError as exc:
        client.close()
        raise ConnectFailed(str(exc)) from None
    if isinstance(transport.packetizer, LeanPacketizer):
        transport.packetizer.ack_at_once = False  # handshake over (see LeanPacketizer)
    log.debug("connected to %s as %s (request size %d)", where, spec.user, size)
    window = int(sftp.get_channel().out_window_size or 0)  # type: ignore[union-attr]
    return SftpConnection(
        spec=spec, client=client, sftp=sftp, request_size=size, send_window=window or 2 << 20
    )
