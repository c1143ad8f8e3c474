"""Shipping as configured: `[sftp]` settings to options and connection, embedded server when
`sftp.port = 0`. What `aep-migrate ship` (and a migration run) call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from backfill.ship.connect import ConnectSpec
from backfill.ship.run import ShipOptions, ShipResult, ship
from backfill.ship.source import FileMeta
from backfill.ship.upload import ProgressFn, Verify
from config.settings import Settings, SftpSettings

__all__ = ["options_from_settings", "ship_configured"]


def options_from_settings(
    s: SftpSettings,
    *,
    remote_dir: str | None = None,
    connections: int | None = None,
    verify: Verify | None = None,
    gzip: bool | None = None,
) -> ShipOptions:
    """`ShipOptions` from the `[sftp]` section; given arguments override it."""
    return ShipOptions(
        remote_dir=remote_dir or s.remote_root,
        connections=connections or s.connections,
        verify=verify or s.verify,
        gzip=s.gzip if gzip is None else gzip,
        max_attempts=s.max_attempts,
    )


def ship_configured(
    paths: Sequence[Path],
    settings: Settings,
    *,
    options: ShipOptions | None = None,
    meta: Mapping[Path, FileMeta] | None = None,
    progress: ProgressFn | None = None,
) -> ShipResult:
    """Ship `paths` where the settings say: the configured server, or (port 0) the embedded
    server started in `settings.state_dir` for the duration of the call.

    Raises:
        ShipError: configuration (no known_hosts), host key, authentication or connection.
    """
    from backfill.sftpd.default import embedded_server, is_embedded

    opts = options or options_from_settings(settings.sftp)
    if is_embedded(settings.sftp):
        with embedded_server(settings.state_dir, settings.sftp) as (_server, spec):
            return ship(
                paths,
                spec,
                state_dir=settings.state_dir,
                options=opts,
                meta=meta,
                progress=progress,
            )
    return ship(
        paths,
        ConnectSpec.from_settings(settings.sftp),
        state_dir=settings.state_dir,
        options=opts,
        meta=meta,
        progress=progress,
    )
