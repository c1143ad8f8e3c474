"""What every command does with its configuration: load it, or print the problems and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

from config.loader import ConfigError, load_settings
from config.settings import Settings

__all__ = ["CONFIG_EXIT_CODE", "settings_or_exit"]

CONFIG_EXIT_CODE = 2


def settings_or_exit(path: Path | None) -> Settings:
    """Load the settings; on any problem print them all to stderr and exit 2 (no traceback)."""
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(CONFIG_EXIT_CODE) from None
