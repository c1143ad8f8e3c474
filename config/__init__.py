"""Settings of aep-bridge and the configuration files shipped with it.

`config.settings` holds the pydantic-settings models; `config.loader` reads a TOML file,
applies the environment and reports every problem with its key path. The files beside this
module are data: `local.toml` (the embedded default), `example.toml` (a real AEP org),
`contracts/` (one contract per CSV export) and `mappings/` (Data Prep mapping sets).
"""

from __future__ import annotations

from config.settings import (
    AepPullSettings,
    BackfillSettings,
    FlowsSettings,
    PlatformSettings,
    Settings,
    SftpSettings,
    SmokeSettings,
)

__all__ = [
    "AepPullSettings",
    "BackfillSettings",
    "FlowsSettings",
    "PlatformSettings",
    "Settings",
    "SftpSettings",
    "SmokeSettings",
]
