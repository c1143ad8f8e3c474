"""Shipping validated files to an SFTP landing zone: verified, atomic, resumable, parallel.

Public surface: `ship_configured` (as the settings say, embedded server included), `ship`
(many files, N connections, manifest last), `ConnectSpec` /
`open_connection` (one verified connection), host-key helpers for `trust-host`, and the error
tree in `backfill.ship.errors`. Library code returns results and logs; it never prints.
"""

from __future__ import annotations

from backfill.ship import _paramiko  # noqa: F401  (first: paramiko without invoke, start-up time)
from backfill.ship.configured import options_from_settings, ship_configured
from backfill.ship.connect import ConnectSpec, SftpConnection, open_connection
from backfill.ship.errors import (
    AuthFailed,
    ConnectFailed,
    HostKeyError,
    HostKeyMismatch,
    RemoteRefused,
    ShipError,
    SourceRefused,
    StateBusy,
    TransferFailed,
    UnknownHostKey,
    VerifyFailed,
)
from backfill.ship.hostkeys import OfferedKey, PinResult, fetch_host_key, fingerprint, pin_host_key
from backfill.ship.run import FileResult, ShipOptions, ShipResult, expand_inputs, ship
from backfill.ship.source import FileMeta

__all__ = [
    "AuthFailed",
    "ConnectFailed",
    "ConnectSpec",
    "FileMeta",
    "FileResult",
    "HostKeyError",
    "HostKeyMismatch",
    "OfferedKey",
    "PinResult",
    "RemoteRefused",
    "SftpConnection",
    "ShipError",
    "ShipOptions",
    "ShipResult",
    "SourceRefused",
    "StateBusy",
    "TransferFailed",
    "UnknownHostKey",
    "VerifyFailed",
    "expand_inputs",
    "fetch_host_key",
    "fingerprint",
    "open_connection",
    "options_from_settings",
    "pin_host_key",
    "ship",
    "ship_configured",
]
