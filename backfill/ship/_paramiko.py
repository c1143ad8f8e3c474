"""paramiko imported without its optional `invoke` dependency (start-up time of `aep-migrate`).

`paramiko.config` imports `invoke` (and through it unittest.mock, asyncio and ssl: ~50 ms of a
~0.4 s command start) only to run ssh_config's `Match exec`; shipping reads no ssh_config.
With `invoke` masked while paramiko loads, `paramiko.config` takes its own documented fallback
(`Match exec` would raise the ImportError). The mask is removed right afterwards, so a later
`import invoke` anywhere else works as usual. Imported first by `backfill.ship`.
"""

from __future__ import annotations

import sys

__all__ = ["import_paramiko"]


def import_paramiko() -> None:
    """Import paramiko, with `invoke` masked if neither is loaded yet."""
    if "paramiko" in sys.modules:
        return
    masked = "invoke" not in sys.modules
    if masked:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` fail
    try:
        import paramiko  # noqa: F401
    finally:
        if masked and "invoke" in sys.modules and sys.modules["invoke"] is None:
            del sys.modules["invoke"]


import_paramiko()
