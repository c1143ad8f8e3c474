"""A TCP proxy on loopback that delays every byte by a fixed time in each direction.

Models a far-away landing zone (latency, not bandwidth): each direction has a reader thread
that timestamps what it receives and a writer thread that forwards it once `delay_s` has
passed, in order. Used by bench_ship.py only.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

__all__ = ["DelayProxy"]


def _pump(src: socket.socket, dst: socket.socket, delay_s: float) -> None:
    q: queue.Queue[tuple[float, bytes | None]] = queue.Queue()

    def reader() -> None:
        try:
            while True:
                data = src.recv(1 << 18)
                q.put((time.monotonic() + delay_s, data or None))
                if not data:
                    return
        except OSError:
            q.put((time.monotonic(), None))

    def writer() -> None:
        try:
            while True:
                due, data = q.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if data is None:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            with contextlib.suppress(OSError):
                src.close()

    threading.Thread(target=reader, daemon=True).start()
    threading.Thread(target=writer, daemon=True).start()


class DelayProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target_port>, `delay_s` each way."""

    def __init__(self, target_port: int, delay_s: float) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._conns.append(s)
            _pump(down, up, self.delay_s)
            _pump(up, down, self.delay_s)

    def close(self) -> None:
        """Stop accepting and drop every proxied connection."""
        self._sock.close()
        for s in self._conns:
            with contextlib.suppress(OSError):
                s.close()
