"""Benchmark: `aep-migrate ship` vs OpenSSH's `sftp` client, same files, same sshd, one run.

Cases: 1 GB as one file and 1 GB as 20 files, uploaded to Debian's OpenSSH sshd on loopback
(started with tests.support.sshd.start_sshd), first directly, then through a local TCP proxy
adding a fixed delay each way (a far-away landing zone). For each: `aep-migrate ship` (the
console script, wall clock, process start included) with `--verify size` and with
`--verify sha256`, and OpenSSH `sftp -b` putting the same files one after another (also wall
clock, connect included). Each measurement is repeated (`--repeat`, interleaved, dirty pages
flushed with sync(2) before each run so one tool's writeback does not slow the next) and the
best and median are printed as MB/s (10^6 bytes) with the ratios against sftp's best/median.

Run (from the repository root):

    .venv/bin/python bench/ship/bench_ship.py                 # 1 GB, 20 files, 25 ms each way
    .venv/bin/python bench/ship/bench_ship.py --total-mb 200  # quicker

Data lives in bench/data/ship/ (gitignored) and is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from delay_proxy import DelayProxy  # noqa: E402  (this script's own directory)

from tests.support.sshd import Sshd, start_sshd  # noqa: E402

MB = 1_000_000
BIN = Path(sys.executable).parent


@dataclass
class Row:
    case: str
    link: str
    tool: str
    seconds: list[float]
    nbytes: int
    inner: list[float] = field(default_factory=list)
    """For ship: the seconds `ship()` itself reported (process start and config excluded)."""

    @property
    def best(self) -> float:
        return self.nbytes / MB / min(self.seconds)

    @property
    def median(self) -> float:
        return self.nbytes / MB / statistics.median(self.seconds)


def make_data(base: Path, total: int, files: int) -> dict[str, list[Path]]:
    one = base / "one"
    many = base / "many"
    one.mkdir(parents=True, exist_ok=True)
    many.mkdir(parents=True, exist_ok=True)
    chunk = 16 * 1024 * 1024

    def fill(path: Path, size: int) -> None:
        with path.open("wb") as out:
            left = size
            while left:
                n = min(chunk, left)
                out.write(os.urandom(n))
                left -= n

    fill(one / "history.csv", total)
    per = total // files
    for i in range(files):
        fill(many / f"part-{i:02d}.csv", per)
    return {"1 file": [one / "history.csv"], f"{files} files": sorted(many.iterdir())}


def known_hosts_for(sshd: Sshd, port: int, path: Path) -> Path:
    pub = (sshd.workdir / "hostkey.pub").read_text().split()
    path.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    return path


def run_ship(
    files: list[Path], sshd: Sshd, port: int, kh: Path, remote: Path, verify: str, work: Path
) -> tuple[float, float]:
    state = work / f"state-{time.monotonic_ns()}"
    cfg = work / "bench.toml"
    cfg.write_text(
        "\n".join(
            [
                f'state_dir = "{state}"',
                "[sftp]",
                'host = "127.0.0.1"',
                f"port = {port}",
                f'user = "{sshd.user}"',
                f'key_path = "{sshd.client_key}"',
                f'known_hosts = "{kh}"',
                "connections = 4",
                "timeout_s = 60",
                "",
            ]
        )
    )
    cmd = [str(BIN / "aep-migrate"), "ship", *map(str, files), "--to", str(remote)]
    cmd += ["--verify", verify, "--json", "--config", str(cfg)]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    dt = time.monotonic() - t0
    if out.returncode != 0 or not json.loads(out.stdout)["ok"]:
        raise SystemExit(f"ship failed: {out.stderr[-2000:]}")
    shutil.rmtree(state, ignore_errors=True)
    doc = json.loads(out.stdout)
    print(
        f"    (ship: {doc.get('connections')} connection(s), round trip "
        f"{doc.get('round_trip_ms')} ms)",
        flush=True,
    )
    return dt, float(doc["seconds"])


def run_sftp(
    files: list[Path], sshd: Sshd, port: int, kh: Path, remote: Path
) -> tuple[float, float]:
    remote.mkdir(parents=True, exist_ok=True)
    batch = "".join(f"put {f} {remote / f.name}\n" for f in files)
    cmd = ["sftp", "-q", "-b", "-", "-i", str(sshd.client_key), "-P", str(port)]
    cmd += ["-o", f"UserKnownHostsFile={kh}", "-o", "StrictHostKeyChecking=yes"]
    cmd += ["-o", "BatchMode=yes", f"{sshd.user}@127.0.0.1"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, input=batch, capture_output=True, text=True, check=False)
    dt = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"sftp failed: {out.stderr[-2000:]}")
    return dt, dt


def check_and_clean(files: list[Path], remote: Path) -> None:
    for f in files:
        landed = remote / f.name
        if landed.stat().st_size != f.stat().st_size:
            raise SystemExit(f"size mismatch for {landed}")
    shutil.rmtree(remote)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--total-mb", type=int, default=1000, help="bytes per case, in MB")
    ap.add_argument("--files", type=int, default=20, help="files in the many-files case")
    ap.add_argument("--delay-ms", type=float, default=25.0, help="proxy delay each way")
    ap.add_argument("--no-proxy", action="store_true", help="loopback only")
    ap.add_argument("--keep", action="store_true", help="keep bench/data/ship afterwards")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool on loopback")
    ap.add_argument("--repeat-proxy", type=int, default=1, help="runs per tool through the proxy")
    args = ap.parse_args()

    base = ROOT / "bench" / "data" / "ship"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    rows: list[Row] = []
    sshd = None
    proxy = None
    try:
        print(f"generating 2 x {args.total_mb} MB of random data in {base} ...", flush=True)
        cases = make_data(base / "src", args.total_mb * MB, args.files)
        sshd = start_sshd(base / "sshd")
        links = [("loopback", sshd.port)]
        if not args.no_proxy:
            proxy = DelayProxy(sshd.port, args.delay_ms / 1000)
            links.append((f"+{args.delay_ms:g} ms each way", proxy.port))
        for link, port in links:
            kh = known_hosts_for(sshd, port, base / f"kh-{port}")
            for case, files in cases.items():
                nbytes = sum(f.stat().st_size for f in files)
                tag = case.replace(" ", "")
                runs = [
                    ("OpenSSH sftp", lambda r, f=files, p=port, k=kh: run_sftp(f, sshd, p, k, r)),
                    (
                        "ship --verify size",
                        lambda r, f=files, p=port, k=kh: run_ship(f, sshd, p, k, r, "size", base),
                    ),
                    (
                        "ship --verify sha256",
                        lambda r, f=files, p=port, k=kh: run_ship(f, sshd, p, k, r, "sha256", base),
                    ),
                ]
                by_tool = {tool: Row(case, link, tool, [], nbytes) for tool, _ in runs}
                repeat = args.repeat if link == "loopback" else args.repeat_proxy
                for k in range(repeat):
                    for tool, fn in runs:
                        remote = sshd.landing / f"{tag}-{tool.split()[-1]}-{port}-{k}"
                        os.sync()
                        dt, inner = fn(remote)
                        check_and_clean(files, remote)
                        by_tool[tool].seconds.append(dt)
                        by_tool[tool].inner.append(inner)
                        print(
                            f"{link:>22} | {case:>8} | {tool:<20} | {dt:7.2f} s | "
                            f"{nbytes / MB / dt:7.1f} MB/s",
                            flush=True,
                        )
                rows.extend(by_tool.values())
    finally:
        if proxy:
            proxy.close()
        if sshd:
            sshd.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print()
    print(
        "| link | case | tool | runs | best MB/s | x sftp (best) | median MB/s "
        "| x sftp (median) | median MB/s, process start excluded |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ref = next(
            x for x in rows if x.link == r.link and x.case == r.case and x.tool == "OpenSSH sftp"
        )
        print(
            f"| {r.link} | {r.case} | {r.tool} | {len(r.seconds)} | {r.best:.1f} | "
            f"{r.best / ref.best:.2f} | {r.median:.1f} | {r.median / ref.median:.2f} | "
            f"{r.nbytes / MB / statistics.median(r.inner):.1f} |"
        )


if __name__ == "__main__":
    main()
