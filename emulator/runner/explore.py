"""Flow Service explore for SFTP base connections: list a folder, inspect one file.

Same connection rules as a run (`sftp_source`): credentials from the base connection, host key
verified against the emulator's known_hosts, never auto-added.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import paramiko

from emulator.runner.formats import FormatOptions, format_options, parse_file
from emulator.runner.sftp_source import SftpAuth, check_folder, is_dir, is_file, open_sftp
from emulator.runner.stripe_source import infer_schema
from emulator.runner.types import SourceError

__all__ = ["PREVIEW_ROWS", "explore_sftp", "inspect_sftp_file"]

#: Records a preview shows.
PREVIEW_ROWS: Final = 10
#: Bytes read from an uncompressed file to inspect it (the rest is not needed for a preview).
_HEAD_BYTES: Final = 1 << 20


def explore_sftp(
    base_connection: Mapping[str, Any], path: str, known_hosts: Path | None
) -> list[dict[str, Any]]:
    """The folders and files in `path`, as Flow Service's explore lists them.

    Args:
        base_connection: the stored SFTP base connection with unmasked `auth.params`.
        path: the folder to list; a file path lists that one file. Empty (or `/` when the
            base connection has a `folderPath`) lists the connection's root: its `folderPath`,
            else where the SFTP session starts.
        known_hosts: the emulator's known_hosts file.

    Returns:
        `[{"type": "folder"|"file", "name", "path", "canPreview", "canFetchSchema"}]`,
        folders first, each group by name; folder paths end with `/`.

    Raises:
        SourceError: cannot connect, the path does not exist or is outside `folderPath`.
    """
    auth = SftpAuth.from_base_connection(base_connection)
    root = path in ("", ".") or (auth.folder is not None and path == "/")
    with open_sftp(auth, known_hosts) as sftp:
        target = (auth.folder or ".") if root else check_folder(sftp, auth, path)
        try:
            attr = sftp.stat(target)
            if not is_dir(attr):
                return [_item(target, attr)]
            entries = sftp.listdir_attr(target)
        except FileNotFoundError:
            raise SourceError(f"path {path!r} does not exist on the SFTP server") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SourceError(f"listing {path!r} on the SFTP server failed: {exc}") from None
    items = [
        _item(posixpath.join(target, e.filename), e) for e in entries if is_dir(e) or is_file(e)
    ]
    return sorted(items, key=lambda i: (i["type"] != "folder", i["name"]))


def _item(path: str, attr: paramiko.SFTPAttributes) -> dict[str, Any]:
    folder = is_dir(attr)
    clean = path[2:] if path.startswith("./") else path
    return {
        "type": "folder" if folder else "file",
        "name": posixpath.basename(clean.rstrip("/")) or clean,
        "path": clean.rstrip("/") + "/" if folder else clean,
        "canPreview": not folder,
        "canFetchSchema": not folder,
    }


def inspect_sftp_file(
    base_connection: Mapping[str, Any],
    path: str,
    known_hosts: Path | None,
    *,
    file_type: str = "delimited",
    column_delimiter: str = ",",
    compression: str | None = None,
    encoding: str = "UTF-8",
    preview: bool = False,
) -> dict[str, Any]:
    """The structure of one file (explore `objectType=file`), and its first records on preview.

    Args:
        base_connection: the stored SFTP base connection with unmasked `auth.params`.
        path: the file.
        known_hosts: the emulator's known_hosts file.
        file_type: `delimited` or `json` (case-insensitive, as explore's `fileType`).
        column_delimiter: explore's `columnDelimiter` (delimited files).
        compression: explore's `compressionType`, if the file is compressed.
        encoding: the file's encoding.
        preview: include `data`, the first `PREVIEW_ROWS` records.

    Returns:
        Delimited: `{"format": "flat", "schema": {"columns": [{"name", "type": "string",
        "xdm": {"type": "string"}}]}}`; JSON lines: `{"format": "hierarchical", "schema":
        <JSON schema>}`; with `"data": [...]` when `preview`.

    Raises:
        SourceError: cannot connect, no such file, a folder, an unreadable format.
    """
    kind = file_type.lower()
    if kind not in ("delimited", "json"):
        raise SourceError(f"fileType {file_type!r} cannot be inspected (delimited and json can)")
    props: dict[str, Any] = {"columnDelimiter": column_delimiter, "encoding": encoding}
    if compression:
        props["compressionType"] = compression
    opts: FormatOptions = format_options({"data": {"format": kind, "properties": props}})
    auth = SftpAuth.from_base_connection(base_connection)
    with open_sftp(auth, known_hosts) as sftp:
        target = check_folder(sftp, auth, path)
        data = _head(sftp, target, whole=opts.compression is not None)
    parsed = parse_file(data, target, opts)
    records = [r.values for r in parsed.records]
    if kind == "json":
        result: dict[str, Any] = {"format": "hierarchical", "schema": infer_schema(records)}
    else:
        columns = parsed.header or []
        result = {
            "format": "flat",
            "schema": {
                "columns": [
                    {"name": c, "type": "string", "xdm": {"type": "string"}} for c in columns
                ]
            },
        }
    if preview:
        result["data"] = records[:PREVIEW_ROWS]
    return result


def _head(sftp: paramiko.SFTPClient, path: str, *, whole: bool) -> bytes:
    """The file's bytes: all of a compressed file, else its first MiB cut at a line end."""
    try:
        attr = sftp.stat(path)
        if not is_file(attr):
            raise SourceError(f"{path!r} is not a file")
        with sftp.open(path, "rb") as fh:
            if whole or (attr.st_size or 0) <= _HEAD_BYTES:
                data: bytes = fh.read()
                return data
            head: bytes = fh.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise SourceError(f"file {path!r} does not exist on the SFTP server") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise SourceError(f"reading {path!r} on the SFTP server failed: {exc}") from None
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut >= 0 else head
