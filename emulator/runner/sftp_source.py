"""Pull files from the SFTP server a base connection names, as AEP's SFTP source does.

Connects with paramiko using the base connection's `auth.params` (`host`, `port`, `userName` or
`username`, then `password` or `privateKeyContent` = base64 of a PEM private key, with an optional
`passPhrase`; `folderPath` restricts access to a sub-folder). The server's host key must be in
the known_hosts file given to the emulator: RejectPolicy, never auto-added, and no file means no
connection. Every wait has a timeout, so a silent server fails the run instead of hanging it.

Listing follows the source connection's `params.path`: a file, a folder (its files; sub-folders
too when `recursive`), or a glob (`/acme/*premium*.csv`). Files are new when their last-modified
time is after the watermark; a new 0-byte file fails the run, naming the file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fnmatch
import io
import posixpath
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paramiko

from emulator.runner.types import SourceError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "IO_TIMEOUT_S",
    "RemoteFile",
    "SftpAuth",
    "check_folder",
    "is_dir",
    "is_file",
    "list_new_files",
    "open_sftp",
    "read_file",
]

#: Seconds to wait for TCP connect, the SSH banner, authentication and channel opens.
CONNECT_TIMEOUT_S: Final = 10.0
#: Seconds a single SFTP request may go unanswered before the run fails.
IO_TIMEOUT_S: Final = 30.0
_GLOB_CHARS: Final = frozenset("*?[")
_KEY_TYPES: Final = (paramiko.RSAKey, paramiko.Ed25519Key, paramiko.ECDSAKey)


@dataclass(frozen=True)
class SftpAuth:
    """The SFTP parameters of a base connection (secrets never appear in repr)."""

    host: str
    port: int
    username: str
    password: str | None
    private_key: str | None
    """PEM text (decoded from `privateKeyContent`)."""
    passphrase: str | None
    folder: str | None

    def __repr__(self) -> str:
        return f"SftpAuth(host={self.host!r}, port={self.port}, username={self.username!r})"

    @classmethod
    def from_base_connection(cls, base_connection: Mapping[str, Any] | None) -> SftpAuth:
        """Read `auth.params`.

        Raises:
            SourceError: a missing host or user, no password and no key, a bad port.
        """
        if not base_connection:
            raise SourceError("the flow's SFTP source has no base connection")
        params: Mapping[str, Any] = (base_connection.get("auth") or {}).get("params") or {}
        host = params.get("host")
        user = params.get("userName") or params.get("username")
        if not host:
            raise SourceError("the base connection has no auth.params.host")
        if not user:
            raise SourceError("the base connection has no auth.params.userName")
        try:
            port = int(params.get("port") or 22)
        except (TypeError, ValueError):
            raise SourceError(f"auth.params.port {params.get('port')!r} is not a number") from None
        if not 0 < port < 65536:
            raise SourceError(f"auth.params.port {port} is out of range")
        password = params.get("password") or None
        key = params.get("privateKeyContent") or None
        if password is None and key is None:
            raise SourceError(
                "the base connection has neither auth.params.password nor privateKeyContent"
            )
        folder = params.get("folderPath") or None
        return cls(
            host=str(host),
            port=port,
            username=str(user),
            password=str(password) if password is not None else None,
            private_key=_decode_key(str(key)) if key is not None else None,
            passphrase=str(params["passPhrase"]) if params.get("passPhrase") else None,
            folder=str(folder) if folder else None,
        )


@dataclass(frozen=True)
class RemoteFile:
    """A file the source path matches."""

    path: str
    size: int
    mtime_ms: int


def _decode_key(content: str) -> str:
    text = content.strip()
    if text.startswith("-----BEGIN"):
        return text  # given as PEM already; accepted although AEP asks for base64
    try:
        pem = base64.b64decode("".join(text.split()), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise SourceError("auth.params.privateKeyContent is not base64 of a PEM key") from None
    if "-----BEGIN" not in pem:
        raise SourceError("auth.params.privateKeyContent does not decode to a PEM private key")
    return pem


def _load_key(pem: str, passphrase: str | None) -> paramiko.PKey:
    last: Exception | None = None
    for key_type in _KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(pem), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise SourceError(
                "the private key is encrypted and auth.params.passPhrase is missing"
            ) from None
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            last = exc
    hint = " (or the passPhrase is wrong)" if passphrase else ""
    raise SourceError(
        f"auth.params.privateKeyContent is not a usable RSA, Ed25519 or ECDSA key{hint}"
    ) from last


@contextlib.contextmanager
def open_sftp(auth: SftpAuth, known_hosts: Path | None) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session to the base connection's server, host key verified.

    Raises:
        SourceError: no known_hosts, unknown or changed host key, refused or silent server,
            failed authentication. The message names the server, never a secret.
    """
    where = f"{auth.username}@{auth.host}:{auth.port}"
    if known_hosts is None:
        raise SourceError(
            f"cannot verify the host key of {auth.host}:{auth.port}: the emulator was started "
            "without a known_hosts file (--known-hosts); host keys are never auto-added"
        )
    if not Path(known_hosts).is_file():
        raise SourceError(f"known_hosts file {known_hosts} does not exist")
    pkey = _load_key(auth.private_key, auth.passphrase) if auth.private_key else None
    client = paramiko.SSHClient()
    try:
        try:
            client.load_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise SourceError(f"cannot read known_hosts file {known_hosts}: {exc}") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                auth.host,
                port=auth.port,
                username=auth.username,
                password=auth.password if pkey is None else None,
                pkey=pkey,
                allow_agent=False,
                look_for_keys=False,
                timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S,
                auth_timeout=CONNECT_TIMEOUT_S,
                channel_timeout=CONNECT_TIMEOUT_S,
            )
        except paramiko.BadHostKeyException as exc:
            raise SourceError(
                f"host key mismatch for {auth.host}:{auth.port}: the server presented a "
                f"{exc.key.get_name()} key with fingerprint "
                f"{exc.key.fingerprint} that does not match known_hosts ({known_hosts}); "
                "refusing to connect"
            ) from None
        except paramiko.AuthenticationException:
            raise SourceError(f"authentication failed for {where}") from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                raise SourceError(
                    f"host key of {auth.host}:{auth.port} is not in known_hosts "
                    f"({known_hosts}); refusing to connect (host keys are never auto-added)"
                ) from None
            if "banner" in text or "No existing session" in text:
                # paramiko reports a silent server as a missing session once the banner wait ends
                raise SourceError(
                    f"timed out waiting for the SSH banner of {where} "
                    f"({CONNECT_TIMEOUT_S:g} s): is it an SSH server?"
                ) from None
            raise SourceError(f"SSH handshake with {where} failed: {text}") from None
        except TimeoutError:
            raise SourceError(f"timed out connecting to {where}") from None
        except OSError as exc:
            raise SourceError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        except EOFError:
            raise SourceError(f"{where} closed the connection during the handshake") from None
        try:
            sftp = client.open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SourceError(f"{where} refused the SFTP subsystem: {exc}") from None
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(IO_TIMEOUT_S)
        try:
            yield sftp
        finally:
            sftp.close()
    finally:
        client.close()


def check_folder(sftp: paramiko.SFTPClient, auth: SftpAuth, path: str) -> str:
    """`path` as given, refused when it leaves the base connection's `folderPath`.

    Both are taken as the server takes them (relative ones from where the session starts), so
    `params.path` may be absolute or relative whatever `folderPath` is.

    Raises:
        SourceError: the path leaves `folderPath`.
    """
    if not auth.folder:
        return path
    try:
        cwd = sftp.normalize(".")
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise SourceError(f"cannot resolve the SFTP session's folder: {exc}") from None

    def absolute(p: str) -> str:
        return posixpath.normpath(p if p.startswith("/") else posixpath.join(cwd, p))

    folder, full = absolute(auth.folder), absolute(path)
    if full != folder and not full.startswith(folder.rstrip("/") + "/"):
        raise SourceError(
            f"path {path!r} is outside the base connection's folderPath {auth.folder!r}"
        )
    return path


def is_dir(attr: paramiko.SFTPAttributes) -> bool:
    """Whether the listing entry is a folder."""
    return attr.st_mode is not None and stat.S_ISDIR(attr.st_mode)


def is_file(attr: paramiko.SFTPAttributes) -> bool:
    """Whether the listing entry is a regular file."""
    return attr.st_mode is not None and stat.S_ISREG(attr.st_mode)


def _walk(
    sftp: paramiko.SFTPClient, folder: str, recursive: bool
) -> Iterator[tuple[str, paramiko.SFTPAttributes]]:
    for attr in sorted(sftp.listdir_attr(folder), key=lambda a: a.filename):
        full = posixpath.join(folder, attr.filename)
        if is_dir(attr):
            if recursive:
                yield from _walk(sftp, full, recursive)
        elif is_file(attr):
            yield full, attr


def _glob_base(pattern: str) -> tuple[str, bool]:
    """The folder to list for a glob, and whether the glob reaches into sub-folders."""
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            base = "/".join(parts[:i]) or ("/" if pattern.startswith("/") else ".")
            return base, i < len(parts) - 1
    return posixpath.dirname(pattern) or ".", False


def _matching(
    sftp: paramiko.SFTPClient, path: str, recursive: bool
) -> list[tuple[str, paramiko.SFTPAttributes]]:
    try:
        if _GLOB_CHARS & set(path):
            base, deep = _glob_base(path)
            prefix = "" if base == "." else base.rstrip("/") + "/"
            found = []
            for full, attr in _walk(sftp, base, recursive or deep):
                name = full[2:] if base == "." and full.startswith("./") else full
                if fnmatch.fnmatchcase(name, path) or fnmatch.fnmatchcase(
                    name[len(prefix) :], path[len(prefix) :]
                ):
                    found.append((name, attr))
            return found
        attr = sftp.stat(path)
        if is_dir(attr):
            return list(_walk(sftp, path, recursive))
        if is_file(attr):
            return [(path, attr)]
        raise SourceError(f"source path {path!r} is neither a file nor a folder")
    except FileNotFoundError:
        raise SourceError(f"source path {path!r} does not exist on the SFTP server") from None
    except PermissionError:
        raise SourceError(f"permission denied listing {path!r} on the SFTP server") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise SourceError(f"listing {path!r} on the SFTP server failed: {exc}") from None


def list_new_files(
    sftp: paramiko.SFTPClient,
    auth: SftpAuth,
    path: str,
    *,
    recursive: bool,
    since_ms: int | None,
) -> tuple[list[RemoteFile], int | None]:
    """The files under `path` modified after `since_ms`, and the newest mtime seen (epoch ms).

    Raises:
        SourceError: the path does not exist, cannot be listed, or a new file is 0 bytes.
    """
    full = check_folder(sftp, auth, path)
    newest: int | None = None
    fresh: list[RemoteFile] = []
    for name, attr in _matching(sftp, full, recursive):
        mtime_ms = int(attr.st_mtime or 0) * 1000
        newest = mtime_ms if newest is None else max(newest, mtime_ms)
        if since_ms is not None and mtime_ms <= since_ms:
            continue
        if not attr.st_size:
            raise SourceError(f"file {name} is 0 bytes: AEP rejects empty files")
        fresh.append(RemoteFile(name, int(attr.st_size), mtime_ms))
    return fresh, newest


def read_file(sftp: paramiko.SFTPClient, remote: RemoteFile) -> bytes:
    """The whole content of one remote file.

    Raises:
        SourceError: the file vanished, cannot be read, or the server went silent.
    """
    try:
        with sftp.open(remote.path, "rb") as fh:
            fh.prefetch(remote.size)
            data: bytes = fh.read()
            return data
    except FileNotFoundError:
        raise SourceError(f"file {remote.path} vanished before it was read") from None
    except PermissionError:
        raise SourceError(f"permission denied reading {remote.path}") from None
    except TimeoutError:
        raise SourceError(f"timed out reading {remote.path}") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise SourceError(f"reading {remote.path} failed: {exc}") from None
