"""Open the platform `platform.mode` names, and a `PlatformClient` for it.

- `embedded`: start the emulator in-process (`emulator.embed.EmbeddedEmulator`, loopback, state
  under `<state_dir>/emulator`) with this state directory's development credentials registered,
  so every embedded run still goes through IMS tokens and the header checks;
- `http`: an emulator already served by `aep-emulator serve` at the configured URLs; without a
  client secret in the environment, the development credentials are registered with it over
  its loopback admin API (`POST /_emulator/clients`);
- `remote`: real AEP; org id, client id and `AEP_BRIDGE_PLATFORM__CLIENT_SECRET` are required.

Example:
    >>> with open_platform(settings) as opened:              # doctest: +SKIP
    ...     opened.client.flows.flows.find_by_name("aep-bridge-stripe.charges")
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from aep.client import PlatformClient
from config.dev_credentials import DevCredentials, ensure_dev_credentials
from config.loader import ConfigError
from config.settings import Settings

__all__ = [
    "EMULATOR_STATE_DIR",
    "OpenPlatform",
    "check_platform",
    "effective_settings",
    "open_platform",
]

EMULATOR_STATE_DIR = "emulator"
"""Sub-directory of `state_dir` that holds the embedded emulator's state."""

logger = logging.getLogger("aep.platform")


@dataclass
class OpenPlatform:
    """An opened platform: the settings as used, the client, and the embedded emulator if any."""

    settings: Settings
    client: PlatformClient
    emulator: Any | None = None
    """The `EmbeddedEmulator` in embedded mode (None otherwise)."""
    dev_credentials: DevCredentials | None = None

    @property
    def base_url(self) -> str:
        """The gateway URL the client talks to."""
        return self.settings.platform.gateway_url


def _with_platform(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(
        update={"platform": settings.platform.model_copy(update=update)}, deep=True
    )


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _remote_problems(settings: Settings) -> list[str]:
    p = settings.platform
    problems = []
    if not p.org_id:
        problems.append("platform.org_id: required in remote mode (Developer Console org id)")
    if not p.client_id:
        problems.append("platform.client_id: required in remote mode (Developer Console client id)")
    if not _has_secret(settings):
        problems.append(
            "platform.client_secret: required in remote mode; set the environment variable "
            "AEP_BRIDGE_PLATFORM__CLIENT_SECRET"
        )
    return problems


def _has_secret(settings: Settings) -> bool:
    secret = settings.platform.client_secret
    return secret is not None and bool(secret.get_secret_value())


def check_platform(settings: Settings) -> None:
    """Refuse, before any work, a platform configuration `open_platform` would refuse.

    Raises:
        ConfigError: remote mode without org id, client id or client secret; http mode without
            a client secret pointing at a non-loopback host.
    """
    mode = settings.platform.mode
    if mode == "remote":
        problems = _remote_problems(settings)
        if problems:
            raise ConfigError("platform (remote mode)", problems)
    elif (
        mode == "http" and not _has_secret(settings) and not _is_loopback(settings.platform.ims_url)
    ):
        raise ConfigError(
            "platform (http mode)",
            [
                "platform.client_secret: development credentials are only registered with "
                "an emulator on loopback; set AEP_BRIDGE_PLATFORM__CLIENT_SECRET"
            ],
        )


def effective_settings(
    settings: Settings, *, base_url: str | None = None, dev: DevCredentials | None = None
) -> Settings:
    """The settings the client uses: in embedded mode, the emulator's URL and dev credentials.

    Raises:
        ConfigError: remote mode without org id, client id or client secret.
    """
    if settings.platform.mode == "remote":
        check_platform(settings)
        return settings
    update: dict[str, Any] = {}
    if base_url is not None:
        update.update(gateway_url=base_url, ims_url=base_url, inlet_url=base_url)
    if dev is not None:
        update.update(client_id=dev.client_id, client_secret=SecretStr(dev.client_secret))
    return _with_platform(settings, **update) if update else settings


def _dev_credentials(state_dir: Path) -> DevCredentials:
    """The development credentials, with an unusable state directory reported as configuration."""
    try:
        return ensure_dev_credentials(state_dir)
    except OSError as exc:
        raise ConfigError(
            "state_dir",
            [f"state_dir: cannot keep development credentials under {state_dir}: {exc.strerror}"],
        ) from None
    except ValueError as exc:
        raise ConfigError("state_dir", [f"state_dir: {exc}"]) from None


def _register_client(client: PlatformClient, dev: DevCredentials) -> None:
    """Register the development client with an emulator served over HTTP (loopback only)."""
    url = client.settings.platform.ims_url.rstrip("/") + "/_emulator/clients"
    client.http.request(
        "POST",
        url,
        json={"client_id": dev.client_id, "client_secret": dev.client_secret},
        platform=False,
        idempotent=True,  # registering the same client twice changes nothing
    )


@contextlib.contextmanager
def open_platform(
    settings: Settings, *, emulator_options: dict[str, Any] | None = None
) -> Iterator[OpenPlatform]:
    """Open the configured platform; close the client (and stop the emulator) on exit.

    Args:
        settings: the loaded settings.
        emulator_options: extra keyword arguments for `EmbeddedEmulator` (embedded mode),
            e.g. `clock_scale`, `landing_delay_s`, `stripe_fixtures`, `faults`.

    Raises:
        ConfigError: remote mode without its credentials, or http mode with no secret
            pointing at a non-loopback host.
    """
    check_platform(settings)
    mode = settings.platform.mode
    state_dir = Path(settings.state_dir)
    if mode == "embedded":
        from emulator.embed import EmbeddedEmulator  # the only import of the emulator

        dev = _dev_credentials(state_dir)
        options: dict[str, Any] = {"known_hosts": settings.sftp.known_hosts}
        options.update(emulator_options or {})
        emulator = EmbeddedEmulator(
            state_dir / EMULATOR_STATE_DIR, clients={dev.client_id: dev.client_secret}, **options
        ).start()
        try:
            effective = effective_settings(settings, base_url=emulator.base_url, dev=dev)
            with PlatformClient(effective) as client:
                logger.info("embedded platform at %s", emulator.base_url)
                yield OpenPlatform(effective, client, emulator=emulator, dev_credentials=dev)
        finally:
            emulator.stop()
        return
    if mode == "http":
        if _has_secret(settings):
            with PlatformClient(settings) as client:
                yield OpenPlatform(settings, client)
            return
        dev = _dev_credentials(state_dir)
        effective = effective_settings(settings, dev=dev)
        with PlatformClient(effective) as client:
            _register_client(client, dev)
            yield OpenPlatform(effective, client, dev_credentials=dev)
        return
    effective = effective_settings(settings)
    with PlatformClient(effective) as client:
        yield OpenPlatform(effective, client)
