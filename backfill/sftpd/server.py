"""The embedded SFTP server: paramiko on a loopback port, key auth, one thread per connection.

```python
server = EmbeddedSftpServer(root, host_key_path, authorized_keys, port=0)
port = server.start()      # listening on 127.0.0.1:port
...
server.stop()              # closes the listener and every session
```

It advertises `posix-rename@openssh.com` and `limits@openssh.com` (256 KiB requests) and
answers only public-key authentication against an authorized_keys file. Non-loopback
addresses are refused at construction: this server exists for the embedded default mode.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
from pathlib import Path

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_EXTENDED, CMD_VERSION, int64

from backfill.sftpd.fs import RootedSftp
from backfill.sftpd.keys import ensure_private_key, load_authorized_keys

__all__ = ["EmbeddedSftpServer"]

log = logging.getLogger(__name__)

_CMD_EXTENDED_REPLY = 201
_LIMIT = 256 * 1024


class _SftpServer(paramiko.SFTPServer):
    """paramiko's SFTP subsystem, advertising the extensions it (and we) implement."""

    def _send_server_version(self) -> int:
        t, data = self._read_packet()
        if t != paramiko.sftp.CMD_INIT:
            raise paramiko.SFTPError("Incompatible sftp protocol")
        version = int.from_bytes(data[:4], "big")
        msg = Message()
        msg.add_int(3)
        msg.add("posix-rename@openssh.com", "1", "limits@openssh.com", "1")
        self._send_packet(CMD_VERSION, msg)
        return version

    def _process(self, t: int, request_number: int, msg: Message) -> None:
        if t == CMD_EXTENDED:
            start = msg.packet.tell()
            if msg.get_text() == "limits@openssh.com":
                self._response(
                    request_number,
                    _CMD_EXTENDED_REPLY,
                    int64(_LIMIT + 1024),  # max packet length
                    int64(_LIMIT),  # max read length
                    int64(_LIMIT),  # max write length
                    int64(0),  # open handles: no limit stated
                )
                return
            msg.packet.seek(start)
        super()._process(t, request_number, msg)


class _Auth(paramiko.ServerInterface):
    """Public-key authentication against the authorized keys; sessions for sftp only."""

    def __init__(self, authorized: list[tuple[str, bytes]]) -> None:
        self._authorized = authorized

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        blob = key.asbytes()
        if any(b == blob for _, b in self._authorized):
            return paramiko.AUTH_SUCCESSFUL
        log.warning("refused public key %s for user %r", key.get_name(), username)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class EmbeddedSftpServer:
    """An SFTP server rooted in `root`, for loopback clients holding an authorized key.

    Args:
        root: directory clients see as `/` (created if missing).
        host_key_path: Ed25519 host key; generated there (mode 0600) on first use.
        authorized_keys: OpenSSH authorized_keys file; re-read at each connection.
        host: loopback address to listen on.
        port: 0 picks a free port (returned by `start`).
    """

    def __init__(
        self,
        root: Path,
        host_key_path: Path,
        authorized_keys: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the embedded SFTP server listens on loopback only, not {host}")
        self.root = root
        self.host_key_path = host_key_path
        self.authorized_keys = authorized_keys
        self.host = host
        self.port = port
        self.host_key: paramiko.PKey | None = None
        self._sock: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._transports: set[paramiko.Transport] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> int:
        """Bind, start accepting in a background thread, and return the port."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = ensure_private_key(self.host_key_path, "aep-bridge embedded sftp host")
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sftpd-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        log.info("embedded SFTP server on %s:%d rooted in %s", self.host, self.port, self.root)
        return self.port

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return  # listener closed by stop()
            threading.Thread(
                target=self._serve, args=(conn, peer), name="sftpd-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        try:
            authorized = load_authorized_keys(self.authorized_keys)
        except OSError as exc:
            log.error("cannot read %s: %s", self.authorized_keys, exc)
            conn.close()
            return
        assert self.host_key is not None
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", _SftpServer, RootedSftp, str(self.root))
        with self._lock:
            if self._stopping.is_set():
                conn.close()
                return
            self._transports.add(transport)
        try:
            transport.start_server(server=_Auth(authorized))
            transport.join()  # the transport thread serves the session(s) until closed
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.info("connection from %s:%d ended: %s", peer[0], peer[1], exc)
        finally:
            with contextlib.suppress(Exception):
                transport.close()
            with self._lock:
                self._transports.discard(transport)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the listener and every connection, and wait for the accept thread."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with self._lock:
            transports = list(self._transports)
        for t in transports:
            with contextlib.suppress(Exception):
                t.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout_s)
            self._accept_thread = None

    def __enter__(self) -> EmbeddedSftpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
