"""Start-up time of the emulator, against a bare Starlette app on uvicorn as the reference.

Measures, side by side in one run, N times each:
- embedded: `EmbeddedEmulator(...).start()` until an IMS token is answered;
- serve: `aep-emulator serve` as a subprocess until an IMS token is answered;
- reference: a subprocess serving a one-route Starlette app on uvicorn until it answers.
Prints medians and the ratios serve/reference and embedded/reference.

Run: .venv/bin/python bench/emulator_startup.py [--runs 5]
State directories go under bench/data/ (gitignored) and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from emulator.embed import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmbeddedEmulator

DATA = Path(__file__).parent / "data" / "emulator_startup"
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
}
REFERENCE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def ok(request): return JSONResponse({"ok": True})
uvicorn.run(Starlette(routes=[Route("/ims/token/v3", ok, methods=["POST"])]),
            host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.post(url, data=TOKEN_FORM, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.005)


def _embedded(n: int) -> float:
    state = DATA / f"embedded-{n}"
    started = time.perf_counter()
    with EmbeddedEmulator(state) as emu:
        _wait(f"{emu.base_url}/ims/token/v3")
        elapsed = time.perf_counter() - started
    return elapsed


def _subprocess(args: list[str], port: int) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/ims/token/v3")
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _serve(n: int) -> float:
    port = _free_port()
    exe = [
        sys.executable,
        "-c",
        "from emulator.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--state",
        str(DATA / f"serve-{n}"),
    ]
    return _subprocess(exe, port)


def _reference(n: int) -> float:
    port = _free_port()
    return _subprocess([sys.executable, "-c", REFERENCE_APP, str(port)], port)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    DATA.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {"embedded": [], "serve": [], "reference": []}
    try:
        for n in range(runs):  # interleaved, so load on the machine hits all three alike
            times["reference"].append(_reference(n))
            times["serve"].append(_serve(n))
            times["embedded"].append(_embedded(n))
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"emulator start-up, median of {runs} runs (cpu count {os.cpu_count()}):")
    for key in ("embedded", "serve", "reference"):
        print(f"  {key:<10} {med[key] * 1000:8.1f} ms   (min {min(times[key]) * 1000:.1f} ms)")
    print(f"  ratio serve/reference    {med['serve'] / med['reference']:.2f}")
    print(f"  ratio embedded/reference {med['embedded'] / med['reference']:.2f}")


if __name__ == "__main__":
    main()
