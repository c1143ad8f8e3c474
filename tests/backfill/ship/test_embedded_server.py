"""The embedded paramiko SFTP server: OpenSSH's own `sftp` client works against it, path
escapes are refused, only authorized keys get in, sessions run concurrently."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backfill.sftpd import EmbeddedSftpServer, embedded_server, ensure_embedded_credentials
from backfill.ship import AuthFailed, ShipOptions, open_connection, ship
from backfill.ship.connect import ConnectSpec
from tests.support.sshd import keygen


@dataclass
class Running:
    server: EmbeddedSftpServer
    spec: ConnectSpec
    root: Path
    state: Path


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Running]:
    state = tmp_path / "state"
    with embedded_server(state) as (server, spec):
        yield Running(server, spec, state / "sftp", state)


def sftp_batch(
    run: Running, commands: str, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH's sftp client in batch mode (`-b -`: stop at the first failing command)."""
    return subprocess.run(
        [
            "sftp",
            "-b",
            "-",
            "-i",
            str(key or run.spec.key_path),
            "-P",
            str(run.spec.port),
            "-o",
            f"UserKnownHostsFile={run.spec.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            f"{run.spec.user}@127.0.0.1",
        ],
        input=commands,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_openssh_sftp_client_put_ls_rename(embedded: Running, tmp_path: Path) -> None:
    src = tmp_path / "hello.csv"
    src.write_bytes(b"a,b\n1,2\n" * 5000)
    r = sftp_batch(
        embedded,
        f"mkdir landing\nput {src} landing/.hello.part\nls -l landing\n"
        "rename landing/.hello.part landing/hello.csv\nls landing\n",
    )
    assert r.returncode == 0, r.stderr
    assert "hello.csv" in r.stdout.split("ls landing", 1)[1]
    assert (embedded.root / "landing" / "hello.csv").read_bytes() == src.read_bytes()
    assert not (embedded.root / "landing" / ".hello.part").exists()
    got = tmp_path / "back.csv"
    r = sftp_batch(embedded, f"get /landing/hello.csv {got}\n")
    assert r.returncode == 0, r.stderr
    assert got.read_bytes() == src.read_bytes()


def test_plain_rename_never_overwrites_posix_rename_does(embedded: Running, tmp_path: Path) -> None:
    (embedded.root / "a").write_text("new")
    (embedded.root / "b").write_text("old")
    with open_connection(embedded.spec) as conn:
        with pytest.raises(OSError):
            conn.sftp.rename("/a", "/b")
        assert (embedded.root / "b").read_text() == "old"
        conn.sftp.posix_rename("/a", "/b")
    assert (embedded.root / "b").read_text() == "new" and not (embedded.root / "a").exists()


@pytest.mark.parametrize(
    "command",
    [
        "get ../../../../../etc/hostname {out}",
        "get /../../etc/hostname {out}",
        "get /etc/hostname {out}",
        "get link_out/secret.txt {out}",
        "get file_link {out}",
        "put {src} link_out/planted.txt",
        "put {src} ../planted.txt",
        "mkdir ../escape_dir",
        "rename inside.txt ../moved.txt",
        "symlink /etc/hostname mylink",
    ],
)
def test_path_escapes_are_refused(embedded: Running, tmp_path: Path, command: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside, embedded.root / "link_out")
    os.symlink(outside / "secret.txt", embedded.root / "file_link")
    (embedded.root / "inside.txt").write_text("x")
    src = tmp_path / "payload.txt"
    src.write_text("payload")
    out = tmp_path / "got.txt"
    r = sftp_batch(embedded, command.format(out=out, src=src) + "\n")
    assert r.returncode != 0, r.stdout
    assert "top secret" not in r.stdout
    assert not out.exists()
    assert not (outside / "planted.txt").exists()
    assert not (embedded.root.parent / "planted.txt").exists()
    assert not (embedded.root.parent / "escape_dir").exists()
    assert not (embedded.root.parent / "moved.txt").exists()
    assert (embedded.root / "inside.txt").exists()
    assert not (embedded.root / "mylink").exists()


def test_listing_through_symlink_out_reveals_nothing(
    embedded: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside, embedded.root / "link_out")
    r = sftp_batch(embedded, "ls -l link_out/\nls link_out/*\n")
    # OpenSSH's client falls back to listing the link itself; never what it points to
    assert "secret.txt" not in r.stdout
    assert "resolves outside the root" in caplog.text
    with open_connection(embedded.spec) as conn, pytest.raises(PermissionError):
        conn.sftp.listdir("/link_out")


def test_absolute_paths_stay_inside_root(embedded: Running, tmp_path: Path) -> None:
    src = tmp_path / "p.txt"
    src.write_text("p")
    target = tmp_path / "abs_target.txt"
    r = sftp_batch(embedded, f"put {src} {target}\n")
    # a host-absolute path means <root>/<that path>, whose directories do not exist
    assert r.returncode != 0
    assert not target.exists()


def test_wrong_key_is_refused(embedded: Running, tmp_path: Path) -> None:
    wrong = keygen(tmp_path / "wrong", "ed25519")
    r = sftp_batch(embedded, "ls\n", key=wrong)
    assert r.returncode != 0
    with pytest.raises(AuthFailed):
        open_connection(embedded.spec.with_(key_path=wrong))


def test_concurrent_sessions_and_ship(embedded: Running, tmp_path: Path) -> None:
    files = []
    for i in range(6):
        p = tmp_path / f"f{i}.csv"
        p.write_bytes(os.urandom(300_000))
        files.append(p)
    result = ship(
        files,
        embedded.spec,
        state_dir=embedded.state,
        options=ShipOptions(remote_dir="/landing", connections=3, adapt_connections=False),
    )
    assert result.ok, result.asdict()
    assert {f.renamed_by for f in result.files} == {"posix-rename"}
    for p in files:
        assert (embedded.root / "landing" / p.name).read_bytes() == p.read_bytes()
    # several OpenSSH clients at once
    errors: list[str] = []

    def client(i: int) -> None:
        r = sftp_batch(embedded, "ls /landing\n")
        if r.returncode != 0 or "f0.csv" not in r.stdout:
            errors.append(r.stderr)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_keys_are_private_and_server_is_loopback_only(tmp_path: Path) -> None:
    creds = ensure_embedded_credentials(tmp_path / "st")
    for key in (creds.host_key, creds.client_key):
        assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedSftpServer(creds.root, creds.host_key, creds.authorized_keys, host="0.0.0.0")
    server = EmbeddedSftpServer(creds.root, creds.host_key, creds.authorized_keys)
    port = server.start()
    try:
        assert port > 0
    finally:
        server.stop()
    # a second start reuses the same host key (clients' pins stay valid)
    before = creds.host_key.read_bytes()
    with embedded_server(tmp_path / "st"):
        pass
    assert creds.host_key.read_bytes() == before


def test_verification_copes_with_a_server_returning_short_reads(
    embedded: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backfill.sftpd import fs

    real_read = fs._Handle.read
    calls: list[int] = []

    def capped(self: fs._Handle, offset: int, length: int) -> bytes | int:
        calls.append(length)
        return real_read(self, offset, min(length, 10_000))

    monkeypatch.setattr(fs._Handle, "read", capped)
    src = tmp_path / "short.csv"
    src.write_bytes(os.urandom(700_000))
    result = ship(
        [src], embedded.spec, state_dir=embedded.state, options=ShipOptions(remote_dir="/")
    )
    assert result.ok, result.asdict()
    assert calls and max(calls) > 10_000  # the server really did answer short
    assert (embedded.root / "short.csv").read_bytes() == src.read_bytes()


def test_pull_side_rsa_pem_key_is_authorized(embedded: Running) -> None:
    creds = ensure_embedded_credentials(embedded.state)
    pem = creds.aep_pull_key.read_text()
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")  # the form AEP asks for
    assert creds.aep_pull_key.stat().st_mode & 0o777 == 0o600
    with open_connection(embedded.spec.with_(key_path=creds.aep_pull_key)) as conn:
        assert conn.alive()
    # calling again adds nothing twice
    before = creds.authorized_keys.read_text()
    ensure_embedded_credentials(embedded.state)
    assert creds.authorized_keys.read_text() == before
