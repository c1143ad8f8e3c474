"""`PlatformClient`: the send path and one object per API, built from `Settings`.

Example:
    >>> with PlatformClient(settings) as aep:                      # doctest: +SKIP
    ...     flow = aep.flows.flows.find_by_name("aep-bridge-stripe.charges")
    ...     ds = aep.catalog.ensure_dataset("aep-bridge-charges", body)

Every configured secret (each `SecretStr` of the settings) is handed to the redactor, so it is
masked in the request log, in errors and in support bundles.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from pydantic import SecretStr

from aep.auth import IMSAuth
from aep.capture import CaptureBuffer
from aep.catalog import Catalog
from aep.dataaccess import DataAccess
from aep.flows import FlowService
from aep.http import Http, HttpConfig, RetryPolicy
from aep.mappings import DataPrep
from aep.profiles import Profiles
from aep.redact import Redactor
from aep.schemas import SchemaRegistry
from aep.streaming import Streaming
from config.settings import Settings

__all__ = ["PlatformClient", "configured_secrets"]


def configured_secrets(node: Any) -> list[str]:
    """Every `SecretStr` value set anywhere in a settings object."""
    found: list[str] = []
    if isinstance(node, SecretStr):
        value = node.get_secret_value()
        if value:
            found.append(value)
    elif hasattr(node, "__pydantic_fields__"):
        for name in type(node).model_fields:
            found.extend(configured_secrets(getattr(node, name)))
    elif isinstance(node, dict):
        for value in node.values():
            found.extend(configured_secrets(value))
    elif isinstance(node, list | tuple):
        for value in node:
            found.extend(configured_secrets(value))
    return found


class PlatformClient:
    """The Platform client: `flows`, `catalog`, `schemas`, `mappings`, `streaming`, `profiles`.

    Args:
        settings: the loaded settings; `platform.*` says where Platform is and who we are.
        transport: an httpx transport (tests: `httpx.MockTransport`).
        extra_secrets: more values to mask (e.g. a Stripe key sent in a connection body).

    Raises:
        ValueError: no client secret is configured.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        extra_secrets: Iterable[str] = (),
    ) -> None:
        p = settings.platform
        if p.client_secret is None or not p.client_secret.get_secret_value():
            raise ValueError(
                "no client secret: set AEP_BRIDGE_PLATFORM__CLIENT_SECRET "
                "(embedded mode generates one: use aep.platform.open_platform)"
            )
        self.settings = settings
        self.capture = CaptureBuffer()
        self.redactor = Redactor([*configured_secrets(settings), *extra_secrets])
        self.http = Http(
            HttpConfig(
                gateway_url=p.gateway_url,
                ims_url=p.ims_url,
                inlet_url=p.inlet_url,
                org_id=p.org_id,
                sandbox=p.sandbox,
                client_id=p.client_id,
                timeout_s=p.timeout_s,
                retry=RetryPolicy(max_attempts=p.max_attempts, deadline_s=p.deadline_s),
            ),
            redactor=self.redactor,
            capture=self.capture,
            transport=transport,
        )
        self.auth = IMSAuth(
            client_id=p.client_id,
            client_secret=p.client_secret.get_secret_value(),
            scopes=p.scopes,
            fetch=self.http.fetch_token,
        )
        self.http.auth = self.auth
        self.flows = FlowService(self.http)
        self.catalog = Catalog(self.http)
        self.schemas = SchemaRegistry(self.http)
        self.mappings = DataPrep(self.http)
        self.streaming = Streaming(self.http)
        self.profiles = Profiles(self.http)
        self.data_access = DataAccess(self.http)

    def __repr__(self) -> str:
        p = self.settings.platform
        return f"PlatformClient(gateway={p.gateway_url!r}, org={p.org_id!r}, sandbox={p.sandbox!r})"

    def add_secret(self, value: str) -> None:
        """Mask `value` from now on (a secret learnt at run time)."""
        self.redactor.add(value)

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
