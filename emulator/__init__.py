"""A local Adobe Experience Platform over SQLite state, faithful to Adobe's API contracts.

It imports nothing from `aep/`: it is the other side of the wire. Public surface:
`create_app` (the ASGI app), `EmulatorConfig` (its settings) and `EmbeddedEmulator` (the app
served on a loopback port in a thread); `aep-emulator serve` is `emulator.cli`. They are
imported lazily, so that `emulator.runner` can be used without loading the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.app import create_app
    from emulator.config import EmulatorConfig
    from emulator.embed import EmbeddedEmulator

__all__ = ["EmbeddedEmulator", "EmulatorConfig", "create_app"]

_HOMES = {
    "create_app": "emulator.app",
    "EmulatorConfig": "emulator.config",
    "EmbeddedEmulator": "emulator.embed",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
