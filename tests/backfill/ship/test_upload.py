"""Uploading to OpenSSH sshd: byte-identical, atomic (never a partial file under its final
name), verified, 0-byte refused, gzip recorded, parallel, rename fallback without posix-rename."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backfill.ship import ConnectSpec, FileMeta, ShipOptions, ship
from tests.backfill.ship.conftest import spec_for
from tests.support.sshd import Sshd


def _manifest(landing: Path, result_manifest: str | None) -> dict:
    assert result_manifest is not None
    return json.loads((landing / Path(result_manifest).name).read_text())


def test_ship_is_byte_identical_verified_and_manifest_is_last(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    a = make_file("a.csv", 300_000)
    b = make_file("b.csv", 1_000)
    result = ship(
        [a, b],
        spec,
        state_dir=tmp_path / "state",
        options=ShipOptions(remote_dir=str(sshd.landing)),
        meta={a: FileMeta(rows=42, contract="stripe_payments")},
    )
    assert result.ok, result.asdict()
    for src in (a, b):
        assert (sshd.landing / src.name).read_bytes() == src.read_bytes()
    assert [f.renamed_by for f in result.files] == ["posix-rename", "posix-rename"]
    assert not [p for p in sshd.landing.iterdir() if p.name.endswith(".part")]
    doc = _manifest(sshd.landing, result.manifest_path)
    by_name = {f["name"]: f for f in doc["files"]}
    assert by_name["a.csv"]["rows"] == 42 and by_name["a.csv"]["contract"] == "stripe_payments"
    assert by_name["b.csv"]["rows"] is None
    assert by_name["a.csv"]["size"] == 300_000

    assert by_name["b.csv"]["sha256"] == hashlib.sha256(b.read_bytes()).hexdigest()
    # the manifest is written after every data file
    manifest_mtime = (sshd.landing / Path(result.manifest_path or "").name).stat().st_mtime_ns
    assert all((sshd.landing / n).stat().st_mtime_ns <= manifest_mtime for n in by_name)


def test_rows_and_contract_come_from_sidecar_report(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    a = make_file("pay.csv", 500)
    (a.parent / "pay.csv.report.json").write_text(json.dumps({"rows": 7, "contract": "stripe"}))
    result = ship(
        [a], spec, state_dir=tmp_path / "st", options=ShipOptions(remote_dir=str(sshd.landing))
    )
    doc = _manifest(sshd.landing, result.manifest_path)
    assert doc["files"][0]["rows"] == 7 and doc["files"][0]["contract"] == "stripe"


def test_no_file_under_final_name_before_complete(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("big.csv", 4 << 20)
    final = sshd.landing / "big.csv"
    seen_sizes: list[int] = []
    temp_seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen_sizes.append(final.stat().st_size)
            temp_seen.extend(p.name for p in sshd.landing.iterdir() if p.name.endswith(".part"))

    def slow(name: str, pos: int, size: int) -> None:
        time.sleep(0.03)  # stretch the upload so the poller sees it in flight

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        result = ship(
            [src],
            spec,
            state_dir=tmp_path / "state",
            options=ShipOptions(remote_dir=str(sshd.landing)),
            progress=slow,
        )
    finally:
        stop.set()
        t.join(5)
    assert result.ok
    assert [n for n in temp_seen if n.startswith(".big.csv.")], "temporary file never seen"
    assert not any(n.endswith(".csv") for n in temp_seen)  # AEP's *.csv never matches
    assert seen_sizes and set(seen_sizes) == {4 << 20}
    assert final.read_bytes() == src.read_bytes()


def test_zero_byte_file_is_refused_others_still_ship(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    empty = make_file("empty.csv", 0, b"")
    ok = make_file("ok.csv", 100)
    result = ship(
        [empty, ok],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing)),
    )
    assert not result.ok
    assert result.files[0].status == "failed" and "0 bytes" in (result.files[0].error or "")
    assert result.files[1].status == "shipped"
    assert not (sshd.landing / "empty.csv").exists()
    assert result.manifest_path is None  # a run with a failed file writes no manifest


def test_gzip_on_the_way_is_recorded_in_manifest(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    data = b"id,amount\n" + b"".join(b"%d,%d.00\n" % (i, i * 3) for i in range(20_000))
    src = make_file("payments.csv", 0, data)
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), gzip=True),
    )
    assert result.ok, result.asdict()
    landed = sshd.landing / "payments.csv.gz"
    assert gzip.decompress(landed.read_bytes()) == data
    assert landed.stat().st_size < len(data) // 3
    entry = _manifest(sshd.landing, result.manifest_path)["files"][0]
    assert entry["compression"] == "gzip" and entry["name"] == "payments.csv.gz"
    assert entry["size"] == landed.stat().st_size


def test_parallel_files_over_several_connections(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    files = [make_file(f"f{i}.csv", 200_000 + i) for i in range(8)]
    peak = [0]
    lock = threading.Lock()

    def watch(name: str, pos: int, size: int) -> None:
        with lock:
            peak[0] = max(peak[0], len(sshd.connection_pids()))
        time.sleep(0.01)

    result = ship(
        files,
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(
            remote_dir=str(sshd.landing / "par"), connections=3, adapt_connections=False
        ),
        progress=watch,
    )
    assert result.ok, result.asdict()
    for f in files:
        assert (sshd.landing / "par" / f.name).read_bytes() == f.read_bytes()
    assert result.connections == 3
    assert peak[0] >= 2  # more than one connection was busy at once


@pytest.mark.parametrize(("interval_s", "most_puts"), [(0.0, None), (3600.0, 3)])
def test_journal_checkpoints_are_spaced_in_time(
    sshd: Sshd,
    spec: ConnectSpec,
    make_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interval_s: float,
    most_puts: int | None,
) -> None:
    from backfill.ship.journal import Journal

    confirmed: list[int] = []
    real_put = Journal.put

    def counting_put(self: Journal, key: str, entry: object) -> None:
        confirmed.append(entry.confirmed)  # type: ignore[attr-defined]
        real_put(self, key, entry)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "put", counting_put)
    src = make_file("ck.csv", 12 << 20)
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(
            remote_dir=str(sshd.landing),
            verify="size",
            checkpoint_bytes=1 << 20,
            checkpoint_interval_s=interval_s,
        ),
    )
    assert result.ok, result.asdict()
    midway = [c for c in confirmed if 0 < c < src.stat().st_size]
    if most_puts is None:
        assert len(midway) >= 3  # every MiB acknowledged while 64 requests are in flight
    else:
        # entry created, final offset, done: no write while the bytes flowed
        assert len(confirmed) <= most_puts and not midway


def test_short_round_trip_uses_one_connection(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    files = [make_file(f"g{i}.csv", 100_000 + i) for i in range(4)]
    logins_before = sshd.log.read_text().count("Accepted publickey")
    result = ship(
        files,
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing / "one"), connections=4),
    )
    assert result.ok, result.asdict()
    # loopback: one connection is not window-bound, so the other three are not opened
    assert result.round_trip_ms is not None and result.round_trip_ms < 50
    assert result.connections == 1
    assert sshd.log.read_text().count("Accepted publickey") - logins_before == 1
    for f in files:
        assert (sshd.landing / "one" / f.name).read_bytes() == f.read_bytes()


@pytest.mark.parametrize(
    ("limit", "files", "rtt_ms", "expected"),
    [
        (4, 20, 0.1, 1),  # loopback
        (4, 20, 5.0, 2),  # 2 MiB per 5 ms = 419 MB/s: one more
        (4, 20, 50.0, 4),  # far away: as many as allowed
        (16, 20, 50.0, 12),
        (16, 3, 50.0, 3),  # never more than files
        (4, 20, 0.0, 1),
    ],
)
def test_connections_follow_the_round_trip(
    limit: int, files: int, rtt_ms: float, expected: int
) -> None:
    from backfill.ship.run import connections_for

    assert connections_for(limit, files, rtt_ms / 1000, 2 * 1024 * 1024) == expected


def test_rerun_skips_files_already_delivered(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("once.csv", 10_000)
    opts = ShipOptions(remote_dir=str(sshd.landing))
    first = ship([src], spec, state_dir=tmp_path / "s", options=opts)
    again = ship([src], spec, state_dir=tmp_path / "s", options=opts)
    assert first.files[0].status == "shipped"
    assert again.files[0].status == "already-there" and again.bytes_shipped == 0


def test_without_posix_rename_renames_without_removing(
    sshd_no_posix_rename: Sshd, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    server = sshd_no_posix_rename
    spec = spec_for(server)
    src = make_file("data.csv", 50_000)
    opts = ShipOptions(remote_dir=str(server.landing))
    first = ship([src], spec, state_dir=tmp_path / "s1", options=opts)
    assert first.ok, first.asdict()
    assert first.files[0].renamed_by == "rename"
    assert (server.landing / "data.csv").read_bytes() == src.read_bytes()
    # a second delivery of new bytes under the same name: the old file is never removed,
    # the new one takes a fresh name that cannot have existed
    old = (server.landing / "data.csv").read_bytes()
    old_inode = (server.landing / "data.csv").stat().st_ino
    src.write_bytes(b"x" * 1000)
    second = ship([src], spec, state_dir=tmp_path / "s2", options=opts)
    assert second.ok, second.asdict()
    assert second.files[0].renamed_by == "rename-unique"
    assert (server.landing / "data.csv").read_bytes() == old
    new_name = Path(second.files[0].remote_path or "").name
    assert new_name.startswith("data.") and new_name.endswith(".csv") and new_name != "data.csv"
    assert (server.landing / new_name).read_bytes() == b"x" * 1000
    # same inode: the file under the final name was never removed and re-created
    assert (server.landing / "data.csv").stat().st_ino == old_inode


def test_corrupted_temporary_file_is_caught_and_uploaded_again(
    sshd: Sshd,
    spec: ConnectSpec,
    make_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import backfill.ship.verify as verify

    src = make_file("c.csv", 2_000_000)
    real = verify.first_difference
    corrupted: list[str] = []

    def corrupt_once(conn, path, local_path, size):  # type: ignore[no-untyped-def]
        if not corrupted:
            on_disk = sshd.landing / Path(path).name
            data = bytearray(on_disk.read_bytes())
            data[1_234_567] ^= 0xFF  # a flipped byte on the server's disk
            on_disk.write_bytes(bytes(data))
            corrupted.append(path)
        return real(conn, path, local_path, size)

    monkeypatch.setattr(verify, "first_difference", corrupt_once)
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), backoff_base_s=0.01),
    )
    assert corrupted
    assert result.ok and result.files[0].attempts == 2
    assert result.files[0].verified_by == "read-back"
    assert (sshd.landing / "c.csv").read_bytes() == src.read_bytes()
    assert not (sshd.landing / Path(corrupted[0]).name).exists()


def test_size_only_verification_skips_the_read_back(
    sshd: Sshd,
    spec: ConnectSpec,
    make_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import backfill.ship.verify as verify

    def must_not_run(*args: object) -> None:
        raise AssertionError("read back although verify=size")

    monkeypatch.setattr(verify, "first_difference", must_not_run)
    monkeypatch.setattr(verify, "OverlappedVerifier", must_not_run)
    src = make_file("s.csv", 100_000)
    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), verify="size"),
    )
    assert result.ok and (sshd.landing / "s.csv").read_bytes() == src.read_bytes()


def test_large_file_is_verified_while_written_on_a_second_connection(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("big.csv", 6 << 20)
    peak = [0]

    def watch(name: str, pos: int, size: int) -> None:
        peak[0] = max(peak[0], len(sshd.connection_pids()))
        time.sleep(0.01)

    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), overlap_min_bytes=1 << 20),
        progress=watch,
    )
    assert result.ok, result.asdict()
    assert result.files[0].verified_by == "overlapped"
    assert peak[0] >= 2  # the verifier's own connection
    assert (sshd.landing / "big.csv").read_bytes() == src.read_bytes()


def test_overlapped_verification_keeps_its_connection_across_files(
    sshd: Sshd, spec: ConnectSpec, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    files = [make_file(f"p{i}.csv", (2 << 20) + i) for i in range(3)]
    logins_before = sshd.log.read_text().count("Accepted publickey")
    result = ship(
        files,
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(remote_dir=str(sshd.landing), connections=1, overlap_min_bytes=1 << 20),
    )
    assert result.ok, result.asdict()
    assert [f.verified_by for f in result.files] == ["overlapped"] * 3
    for f in files:
        assert (sshd.landing / f.name).read_bytes() == f.read_bytes()
    # one connection for the uploads, one for all three read-backs (not one per file)
    assert sshd.log.read_text().count("Accepted publickey") - logins_before == 2


def test_overlapped_verifier_catches_a_difference(
    sshd: Sshd,
    spec: ConnectSpec,
    make_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import backfill.ship.verify as verify

    size = 6 << 20
    src = make_file("big.csv", size)
    real_call = verify._Comparer.__call__

    def slow_compare(self, data):  # type: ignore[no-untyped-def]
        time.sleep(0.03)  # the verifier lags well behind the writer
        return real_call(self, data)

    monkeypatch.setattr(verify._Comparer, "__call__", slow_compare)
    changed: list[int] = []

    def change_local_after_send(name: str, pos: int, total: int) -> None:
        if pos == total and not changed:
            # the writer has sent everything; the verifier has not reached 5 MiB yet
            with src.open("r+b") as f:
                f.seek(5 << 20)
                byte = f.read(1)
                f.seek(5 << 20)
                f.write(bytes([byte[0] ^ 0xFF]))
            changed.append(pos)

    result = ship(
        [src],
        spec,
        state_dir=tmp_path / "s",
        options=ShipOptions(
            remote_dir=str(sshd.landing), overlap_min_bytes=1 << 20, backoff_base_s=0.01
        ),
        progress=change_local_after_send,
    )
    assert changed
    f = result.files[0]
    assert result.ok and f.attempts == 2 and f.verified_by == "overlapped"
    assert (sshd.landing / "big.csv").read_bytes() == src.read_bytes()
