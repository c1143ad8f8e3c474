"""The emulator's start-up settings (one frozen value read once and passed down)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CLIENTS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_TOKEN_LIFETIME_S",
    "EmulatorConfig",
]

DEFAULT_CLIENT_ID = "aep-emulator-dev"
"""The development client registered when no clients are given (embedded default)."""
DEFAULT_CLIENT_SECRET = "aep-emulator-dev-secret"
DEFAULT_CLIENTS: Mapping[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
DEFAULT_TOKEN_LIFETIME_S = 86399


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator needs to know at start.

    Attributes:
        state_dir: directory of the SQLite state and the worker lock.
        clients: OAuth clients (client_id -> client_secret); None registers DEFAULT_CLIENTS.
        token_lifetime_s: lifetime of IMS tokens in seconds.
        clock_scale: schedules run this many times faster than real time.
        landing_delay_s: delay between accepting a streamed record and landing it.
        known_hosts: known_hosts file for SFTP pulls (host keys are never auto-added).
        stripe_fixtures: directory of `<resourcePath>.jsonl` Stripe objects.
        faults: enable the fault-injection admin API.
        worker: run the background worker (schedules, landings) in this process.
        worker_poll_s: how often the worker looks for due work.
    """

    state_dir: Path
    clients: Mapping[str, str] | None = None
    token_lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S
    clock_scale: float = 1.0
    landing_delay_s: float = 2.0
    known_hosts: Path | None = None
    stripe_fixtures: Path | None = None
    faults: bool = False
    worker: bool = True
    worker_poll_s: float = 0.1

    def effective_clients(self) -> Mapping[str, str]:
        """The clients to register at start."""
        return DEFAULT_CLIENTS if self.clients is None else self.clients
