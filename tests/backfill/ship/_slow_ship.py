"""Helper process for the resume test: ships one file slowly until the test kills it.

Usage: python -m tests.backfill.ship._slow_ship HOST PORT USER KEY KNOWN_HOSTS FILE REMOTE STATE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from backfill.ship import ConnectSpec, ShipOptions, ship


def main(argv: list[str]) -> None:
    host, port, user, key, kh, file, remote, state = argv
    spec = ConnectSpec(
        host=host, port=int(port), user=user, key_path=Path(key), known_hosts=Path(kh)
    )
    ship(
        [Path(file)],
        spec,
        state_dir=Path(state),
        options=ShipOptions(remote_dir=remote, checkpoint_bytes=1 << 20, checkpoint_interval_s=0),
        progress=lambda name, pos, size: time.sleep(0.1),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
