"""The four console scripts print their usage and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["aep-migrate", "aep-sync", "aep-smoke", "aep-emulator"])
def test_help_prints_usage(command: str) -> None:
    done = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert command in done.stdout
