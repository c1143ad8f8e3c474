"""The embedded server's filesystem: SFTP operations confined to one root directory.

Clients see the root as `/` (a chroot view): `/landing/a.csv` is `<root>/landing/a.csv`.
Every path is checked before use:

- `..` that would climb above `/` is refused (not silently clamped);
- the path is resolved with `os.path.realpath` (following symlinks) and must stay inside the
  root's real path, so a symlink inside the root that points outside is refused; operations on
  a link itself (lstat, remove, rename) resolve only its parent;
- files are opened with `O_NOFOLLOW` on the resolved path, so a link swapped in after the
  check is not followed either;
- creating symlinks is refused altogether.

Refusals answer `SSH_FX_PERMISSION_DENIED` and are logged with the requested path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat as stat_mod

from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_EOF, SFTP_OK, SFTP_OP_UNSUPPORTED, SFTP_PERMISSION_DENIED

__all__ = ["PathRefused", "RootedSftp"]

log = logging.getLogger(__name__)


class PathRefused(PermissionError):
    """A client path resolves outside the server's root."""


class _Handle(SFTPHandle):
    """An open file: positional reads and writes on a raw descriptor."""

    def __init__(self, fd: int, real_path: str, flags: int) -> None:
        super().__init__(flags)
        self.fd = fd
        self.real_path = real_path

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return data if data else SFTP_EOF

    def write(self, offset: int, data: bytes) -> int:
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(self.fd, view, offset)
                view, offset = view[n:], offset + n
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def stat(self) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.fstat(self.fd))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr: SFTPAttributes) -> int:
        try:
            if attr._flags & attr.FLAG_SIZE:
                os.ftruncate(self.fd, attr.st_size)
            if attr._flags & attr.FLAG_PERMISSIONS:
                os.fchmod(self.fd, stat_mod.S_IMODE(attr.st_mode))
            if attr._flags & attr.FLAG_AMTIME:
                os.utime(self.fd, (attr.st_atime, attr.st_mtime))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def close(self) -> None:
        # paramiko may close a handle twice (CMD_CLOSE, then session end): a second
        # os.close could hit a descriptor another thread has opened meanwhile
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class RootedSftp(SFTPServerInterface):
    """SFTP operations confined to `root` (passed through `set_subsystem_handler`)."""

    def __init__(self, server: object, root: str, *args: object, **kwargs: object) -> None:
        super().__init__(server, *args, **kwargs)
        self.root = os.path.realpath(root)

    # -- path checks -------------------------------------------------------------------------

    def _virtual(self, path: str) -> str:
        """Normalise a client path to an absolute virtual path; refuse climbing above `/`."""
        parts: list[str] = []
        for part in path.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise PathRefused(f"{path!r} climbs above the root")
                parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def _real(self, path: str, *, follow: bool = True) -> str:
        """The checked real path of a client path."""
        virt = self._virtual(path)
        joined = os.path.join(self.root, virt.lstrip("/"))
        if follow or virt == "/":
            real = os.path.realpath(joined)
        else:
            real = os.path.join(os.path.realpath(os.path.dirname(joined)), os.path.basename(joined))
        if not self._inside(real):
            raise PathRefused(f"{path!r} resolves outside the root")
        return real

    def _to_virtual(self, real: str) -> str:
        rel = os.path.relpath(real, self.root)
        return "/" if rel == "." else "/" + rel.replace(os.sep, "/")

    @staticmethod
    def _refused(path: str, exc: PathRefused) -> int:
        log.warning("refused: %s", exc)
        return SFTP_PERMISSION_DENIED

    # -- operations ----------------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        virt = self._virtual(path if path.startswith("/") else "/" + path)
        real = self._real(virt)  # raises for escapes; paramiko answers SSH_FX_FAILURE
        return self._to_virtual(real) if os.path.exists(real) else virt

    def open(self, path: str, flags: int, attr: SFTPAttributes) -> SFTPHandle | int:
        try:
            real = self._real(path)
        except PathRefused as exc:
            return self._refused(path, exc)
        mode = 0o644
        if attr is not None and attr._flags & attr.FLAG_PERMISSIONS:
            mode = stat_mod.S_IMODE(attr.st_mode)
        try:
            fd = os.open(real, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return _Handle(fd, real, flags)

    def list_folder(self, path: str) -> list[SFTPAttributes] | int:
        try:
            real = self._real(path)
            out = []
            for name in sorted(os.listdir(real)):
                attr = SFTPAttributes.from_stat(os.lstat(os.path.join(real, name)))
                attr.filename = name
                out.append(attr)
            return out
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def stat(self, path: str) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.stat(self._real(path)))
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def lstat(self, path: str) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.lstat(self._real(path, follow=False)))
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def remove(self, path: str) -> int:
        try:
            os.remove(self._real(path, follow=False))
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        """SFTP v3 rename: never replaces an existing target (link + unlink, as OpenSSH)."""
        try:
            old = self._real(oldpath, follow=False)
            new = self._real(newpath, follow=False)
            if os.path.isdir(old) and not os.path.islink(old):
                if os.path.lexists(new):
                    raise FileExistsError(17, "target exists")
                os.rename(old, new)
            else:
                os.link(old, new, follow_symlinks=False)  # fails if `new` exists
                os.unlink(old)
        except PathRefused as exc:
            return self._refused(oldpath, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: atomic rename that replaces the target."""
        try:
            os.replace(self._real(oldpath, follow=False), self._real(newpath, follow=False))
        except PathRefused as exc:
            return self._refused(oldpath, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        mode = 0o755
        if attr is not None and attr._flags & attr.FLAG_PERMISSIONS:
            mode = stat_mod.S_IMODE(attr.st_mode)
        try:
            os.mkdir(self._real(path, follow=False), mode)
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        try:
            os.rmdir(self._real(path, follow=False))
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        try:
            real = self._real(path)
            if attr._flags & attr.FLAG_SIZE:
                os.truncate(real, attr.st_size)
            if attr._flags & attr.FLAG_PERMISSIONS:
                os.chmod(real, stat_mod.S_IMODE(attr.st_mode))
            if attr._flags & attr.FLAG_AMTIME:
                os.utime(real, (attr.st_atime, attr.st_mtime))
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def readlink(self, path: str) -> str | int:
        try:
            link = self._real(path, follow=False)
            target = os.path.realpath(link)
            if not self._inside(target):
                raise PathRefused(f"{path!r} points outside the root")
            return self._to_virtual(target)
        except PathRefused as exc:
            return self._refused(path, exc)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def symlink(self, target_path: str, path: str) -> int:
        log.warning("refused: symlink %r -> %r (links are not allowed)", path, target_path)
        return SFTP_OP_UNSUPPORTED
