"""Password authentication (`auth.params.password`), against a small paramiko SFTP server.

The OpenSSH fixture accepts keys only (the test user has no password to give it), so this
module serves one folder with paramiko's own server classes: password auth, read-only SFTP.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from emulator.runner import RunInput, execute_run

USER, PASSWORD = "loader", "correct horse battery staple"


class _Auth(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if (username, password) == (USER, PASSWORD):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


class _Folder(paramiko.SFTPServerInterface):
    """Read-only SFTP over one local folder (`/` is the folder)."""

    root: Path

    def _local(self, path: str) -> Path:
        local = (self.root / path.lstrip("/")).resolve()
        if local != self.root and self.root not in local.parents:
            raise PermissionError(path)
        return local

    def canonicalize(self, path: str) -> str:
        return "/" + str(self._local(path).relative_to(self.root)).strip(".")

    def list_folder(self, path: str) -> Any:
        folder = self._local(path)
        out = []
        for entry in sorted(folder.iterdir()):
            attr = paramiko.SFTPAttributes.from_stat(entry.stat())
            attr.filename = entry.name
            out.append(attr)
        return out

    def stat(self, path: str) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(self._local(path).stat())
        except FileNotFoundError:
            return paramiko.SFTP_NO_SUCH_FILE

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> Any:
        handle = _Handle(flags)
        handle.readfile = self._local(path).open("rb")
        return handle


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """(port, served folder, known_hosts) of a paramiko SFTP server taking USER/PASSWORD."""
    root = tmp_path / "served"
    root.mkdir()
    _Folder.root = root.resolve()
    host_key = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path))
    known = tmp_path / "known_hosts"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    listener.settimeout(0.1)
    transports: list[paramiko.Transport] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            transport = paramiko.Transport(conn)
            transports.append(transport)
            transport.add_server_key(host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Folder)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=_Auth())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, root, known
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for transport in transports:
            transport.close()


def _keygen(tmp_path: Path) -> str:
    from tests.support.sshd import keygen

    return str(keygen(tmp_path / "host_key", "ed25519"))


def _run(port: int, known: Path, password: str) -> Any:
    return execute_run(
        RunInput(
            flow={"id": "f"},
            flow_spec_name="CloudStorageToAEP",
            base_connection={
                "auth": {
                    "specName": "Basic Authentication for sftp",
                    "params": {
                        "host": "127.0.0.1",
                        "port": port,
                        "userName": USER,
                        "password": password,
                    },
                }
            },
            source_connection={"data": {"format": "delimited"}, "params": {"path": "/loyalty.csv"}},
            target_connection={"params": {"dataSetId": "d"}},
            mapping_set=None,
            target_schema=None,
            since_ms=None,
            known_hosts=known,
            stripe_fixtures=None,
        )
    )


def test_password_authentication(password_server):
    port, root, known = password_server
    (root / "loyalty.csv").write_text("email,points\na@x.io,1\nb@x.io,2\n")
    out = _run(port, known, PASSWORD)
    assert (out.failure, out.input_count, out.files) == (None, 2, ["/loyalty.csv"])
    wrong = _run(port, known, "hunter2")
    assert wrong.failure == f"authentication failed for {USER}@127.0.0.1:{port}"
    assert "hunter2" not in wrong.failure
