"""`aep-migrate ship`, `trust-host` and `sftp-server` end to end (sshd and the embedded server)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from backfill.cli import app
from tests.support.sshd import Sshd

runner = CliRunner()


def _config(tmp_path: Path, sshd: Sshd, known_hosts: Path | None = None, **extra: object) -> Path:
    kh = known_hosts or sshd.known_hosts
    lines = [
        f'state_dir = "{tmp_path / "state"}"',
        "[sftp]",
        f'host = "{sshd.host}"',
        f"port = {sshd.port}",
        f'user = "{sshd.user}"',
        f'key_path = "{sshd.client_key}"',
        f'known_hosts = "{kh}"',
        f'remote_root = "{sshd.landing}"',
        "timeout_s = 5",
    ] + [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    cfg = tmp_path / "c.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def test_ship_json_to_sshd(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_bytes(os.urandom(100_000))
    (src / "b.csv").write_text("id\n1\n")
    (src / "b.csv.report.json").write_text('{"rows": 1, "contract": "capillary_customers"}')
    r = runner.invoke(app, ["ship", str(src), "--json", "--config", str(_config(tmp_path, sshd))])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and {Path(f["source"]).name for f in doc["files"]} == {"a.csv", "b.csv"}
    assert (sshd.landing / "a.csv").read_bytes() == (src / "a.csv").read_bytes()
    manifest = json.loads((sshd.landing / Path(doc["manifest"]).name).read_text())
    b = next(f for f in manifest["files"] if f["name"] == "b.csv")
    assert b["rows"] == 1 and b["contract"] == "capillary_customers"
    assert not (sshd.landing / "b.csv.report.json").exists()


def test_ship_summary_and_failure_exit_code(sshd: Sshd, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("a\n1\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = runner.invoke(
        app, ["ship", str(good), str(empty), "--config", str(_config(tmp_path, sshd))]
    )
    assert r.exit_code == 1
    assert "shipped" in r.stderr and "failed" in r.stderr and "0 bytes" in r.stderr
    assert "manifest: not written" in r.stderr


def test_ship_refuses_mismatched_host_key_with_next_step(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    # another server's key pinned for this port
    other = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    assert other.returncode == 0
    pub = (tmp_path / "k.pub").read_text().split()
    kh.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
    f = tmp_path / "x.csv"
    f.write_text("a\n")
    r = runner.invoke(app, ["ship", str(f), "--config", str(_config(tmp_path, sshd, kh))])
    assert r.exit_code == 1
    assert "HOST KEY MISMATCH" in r.stderr and "aep-migrate trust-host" in r.stderr
    assert "Traceback" not in r.output
    assert not (sshd.landing / "x.csv").exists()


def test_trust_host_pins_only_when_asked(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    cfg = _config(tmp_path, sshd, kh)
    target = f"127.0.0.1:{sshd.port}"
    r = runner.invoke(app, ["trust-host", target, "--config", str(cfg)])
    assert r.exit_code == 1 and "SHA256:" in r.stdout and "--yes" in r.stderr
    assert not kh.exists()
    r = runner.invoke(app, ["trust-host", target, "--yes", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "added" in r.stdout
    assert kh.read_text().strip() == sshd.known_hosts.read_text().strip()
    r = runner.invoke(app, ["trust-host", target, "--yes", "--config", str(cfg)])
    assert "already trusted" in r.stdout
    f = tmp_path / "after.csv"
    f.write_text("a\n")
    r = runner.invoke(app, ["ship", str(f), "--config", str(cfg)])
    assert r.exit_code == 0, r.output


def test_ship_embedded_default_with_gzip(tmp_path: Path) -> None:
    cfg = tmp_path / "local.toml"
    state = tmp_path / "state"
    cfg.write_text(f'state_dir = "{state}"\n[sftp]\nport = 0\nremote_root = "/landing"\n')
    data = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(5000))
    src = tmp_path / "customers.csv"
    src.write_bytes(data)
    r = runner.invoke(app, ["ship", str(src), "--gzip", "--json", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["files"][0]["compression"] == "gzip"
    assert gzip.decompress((state / "sftp" / "landing" / "customers.csv.gz").read_bytes()) == data


def test_sftp_server_command_serves_openssh_client(tmp_path: Path) -> None:
    cfg = tmp_path / "local.toml"
    state = tmp_path / "state"
    cfg.write_text(f'state_dir = "{state}"\n[sftp]\nport = 0\nuser = "aep"\n')
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "aep-migrate"), "sftp-server", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "embedded SFTP server on 127.0.0.1:" in line, line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        port = int(line.split("127.0.0.1:", 1)[1].split(",", 1)[0])
        src = tmp_path / "p.csv"
        src.write_text("a\n1\n")
        keys = state / "sftp-keys"
        r = subprocess.run(
            [
                "sftp", "-b", "-", "-i", str(keys / "client_ed25519"), "-P", str(port),
                "-o", f"UserKnownHostsFile={keys / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "aep@127.0.0.1",
            ],
            input=f"put {src} /p.csv\nls\n",
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert (state / "sftp" / "p.csv").read_text() == "a\n1\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_second_ship_on_the_same_state_dir_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    import time

    from backfill.cli.ship_cmd import STATE_BUSY_EXIT_CODE

    big = tmp_path / "slow.csv"
    big.write_bytes(os.urandom(4 << 20))
    other = tmp_path / "other.csv"
    other.write_bytes(os.urandom(10_000))
    state = tmp_path / "state"
    journal = state / "ship" / "progress.json"
    # a first ship (another process) still running on this state directory
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.backfill.ship._slow_ship",
            sshd.host,
            str(sshd.port),
            sshd.user,
            str(sshd.client_key),
            str(sshd.known_hosts),
            str(big),
            str(sshd.landing),
            str(state),
        ],
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        deadline = time.monotonic() + 30
        while not journal.exists():
            assert first.poll() is None, "the first ship exited early"
            assert time.monotonic() < deadline, "the first ship never started"
            time.sleep(0.05)
        before = journal.read_text()
        r = runner.invoke(app, ["ship", str(other), "--config", str(_config(tmp_path, sshd))])
        assert r.exit_code == STATE_BUSY_EXIT_CODE, r.output
        assert f"process {first.pid} is already shipping" in r.stderr
        assert "state_dir" in r.stderr and "Traceback" not in r.output
        assert not (sshd.landing / "other.csv").exists()
        # the refused run left the first one's journal alone
        assert first.poll() is None
        assert json.loads(journal.read_text())["files"].keys() == json.loads(before)["files"].keys()
    finally:
        first.kill()
        first.wait(10)
    # the lock died with its process: the next run ships
    r = runner.invoke(app, ["ship", str(other), "--config", str(_config(tmp_path, sshd))])
    assert r.exit_code == 0, r.output
    assert (sshd.landing / "other.csv").read_bytes() == other.read_bytes()
