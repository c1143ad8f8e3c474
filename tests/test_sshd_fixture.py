"""The sshd fixture itself: OpenSSH's own sftp client can log in and write into the landing dir."""

from __future__ import annotations

import subprocess

from tests.support.sshd import Sshd


def test_openssh_sftp_client_uploads_to_fixture(sshd: Sshd, tmp_path):
    src = tmp_path / "hello.csv"
    src.write_text("a,b\n1,2\n")
    batch = tmp_path / "batch"
    batch.write_text(f"put {src} hello.csv\n")
    result = subprocess.run(
        [
            "sftp",
            "-b",
            str(batch),
            "-i",
            str(sshd.client_key),
            "-P",
            str(sshd.port),
            "-o",
            f"UserKnownHostsFile={sshd.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"{sshd.user}@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr + sshd.log.read_text()
    assert (sshd.landing / "hello.csv").read_text() == "a,b\n1,2\n"
