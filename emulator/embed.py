"""`EmbeddedEmulator`: the emulator served by uvicorn in a thread on a loopback port.

with EmbeddedEmulator(tmp_path / "aep") as emu:
    httpx.post(f"{emu.base_url}/ims/token/v3", data={...})
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import uvicorn

from emulator.app import create_app
from emulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig
from emulator.store import Store

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "EmbeddedEmulator"]

_START_TIMEOUT_S = 30.0


class EmbeddedEmulator:
    """The emulator in-process, over real HTTP on 127.0.0.1 (interfaces.md §1)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clients: Mapping[str, str] | None = None,
        token_lifetime_s: int = 86399,
        clock_scale: float = 1.0,
        landing_delay_s: float = 2.0,
        known_hosts: Path | None = None,
        stripe_fixtures: Path | None = None,
        faults: bool = False,
    ) -> None:
        self.config = EmulatorConfig(
            state_dir=Path(state_dir),
            clients=clients,
            token_lifetime_s=token_lifetime_s,
            clock_scale=clock_scale,
            landing_delay_s=landing_delay_s,
            known_hosts=known_hosts,
            stripe_fixtures=stripe_fixtures,
            faults=faults,
        )
        self.host = host
        self.port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._sock: socket.socket | None = None

    def start(self) -> EmbeddedEmulator:
        """Bind the port, start serving in a thread, and return once requests are answered.

        Raises:
            RuntimeError: the server did not come up within 30 s.
        """
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._store = Store(self.config.state_dir)
        app = create_app(self.config, store=self._store)
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="aep-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"aep-emulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    @property
    def holds_worker_lock(self) -> bool:
        """True while this instance's worker runs the state directory's schedules and landings."""
        if self._server is None:
            return False
        app = self._server.config.app
        return bool(app.state.worker.holds_lock)  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop serving, stop the worker, close the state store."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = None
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> EmbeddedEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
