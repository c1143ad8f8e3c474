"""Support-bundle capture: the last exchanges with Platform, redacted when recorded.

The one send path (`aep.http`) records every Platform exchange here: method, URL, status,
request id, timestamp, duration, request body and response body, all already passed through the
`Redactor`. A command that fails (e.g. `aep-smoke`) writes `SupportBundle` to a file for Adobe
support, naming the resource ids involved. Nothing unredacted is ever kept in memory here, so a
bundle cannot leak what the log would not.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CaptureBuffer", "Exchange", "SupportBundle"]

DEFAULT_CAPACITY = 50


@dataclass(frozen=True)
class Exchange:
    """One request and its outcome, redacted."""

    method: str
    url: str
    status: int | None
    request_id: str | None
    timestamp: str
    """ISO 8601 UTC time the request was sent."""
    duration_ms: float
    request_headers: dict[str, str]
    request_body: Any
    response_body: Any
    error: str | None = None


@dataclass(frozen=True)
class SupportBundle:
    """What Adobe support asks for: payloads, response bodies, request ids, times, resource ids."""

    created: str
    exchanges: list[Exchange]
    resource_ids: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    def asdict(self) -> dict[str, Any]:
        """The bundle as plain JSON-able data."""
        return asdict(self)

    def write(self, path: Path) -> Path:
        """Write the bundle as indented JSON (mode 0600, written beside and renamed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.asdict(), fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
        os.replace(tmp, path)
        return path


class CaptureBuffer:
    """A bounded, thread-safe ring of the latest exchanges."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._items: deque[Exchange] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, exchange: Exchange) -> None:
        """Keep `exchange` (already redacted)."""
        with self._lock:
            self._items.append(exchange)

    def exchanges(self) -> list[Exchange]:
        """The kept exchanges, oldest first."""
        with self._lock:
            return list(self._items)

    def bundle(
        self, *, resource_ids: dict[str, str] | None = None, note: str | None = None
    ) -> SupportBundle:
        """A support bundle of the kept exchanges and the given resource ids."""
        return SupportBundle(
            created=datetime.now(UTC).isoformat(),
            exchanges=self.exchanges(),
            resource_ids=dict(resource_ids or {}),
            note=note,
        )
