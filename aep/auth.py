"""IMS OAuth server-to-server authentication: get, cache, renew the access token.

The token comes from `POST {ims_url}/ims/token/v3` with the form fields `grant_type`,
`client_id`, `client_secret` and `scope` (comma-separated). It is cached with its expiry and
renewed ahead of it (`renew_margin`); after a 401 the send path calls `renew(stale)` and re-sends
exactly once. Renewal holds a lock and only renews when the token that failed is still the
current one, so many threads that hit the same 401 at once cause one renewal, not many.

The HTTP request itself is done by the one send path (`aep.http`), passed in as `fetch`, so
retries and the request log stay in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from aep import deviations

__all__ = ["IMSAuth", "TokenFetcher", "TokenResponse"]

DEFAULT_RENEW_MARGIN_S = 300.0
"""Renew this long before expiry (capped to a quarter of the lifetime for short-lived tokens)."""


class TokenResponse(BaseModel):
    """IMS's answer to a token request."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(repr=False)
    token_type: str = "bearer"
    expires_in: float
    """Lifetime; seconds for `/ims/token/v3` (see `deviations.token_lifetime_s`)."""


TokenFetcher = Callable[[Mapping[str, str]], TokenResponse]
"""Sends the form to IMS and returns its parsed answer (raises `TokenError`)."""


@dataclass
class _Cached:
    token: str
    expires_at: float
    renew_at: float


class IMSAuth:
    """Cached IMS access token for one OAuth server-to-server credential.

    Args:
        client_id: the Developer Console client id (also the `x-api-key`).
        client_secret: its secret.
        scopes: IMS scopes, sent comma-separated.
        fetch: the function that posts the form to IMS.
        renew_margin_s: renew this many seconds before expiry.
        clock: monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str],
        fetch: TokenFetcher,
        renew_margin_s: float = DEFAULT_RENEW_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._scopes = list(scopes)
        self._fetch = fetch
        self._margin = renew_margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: _Cached | None = None
        self.renewals = 0
        """How many tokens were fetched (the first one included)."""

    def __repr__(self) -> str:
        return f"IMSAuth(client_id={self.client_id!r}, client_secret='***')"

    def form(self) -> dict[str, str]:
        """The token request's form fields."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "scope": ",".join(self._scopes),
        }

    def token(self) -> str:
        """A valid access token, fetched or renewed if the cached one is due."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() < cached.renew_at:
                return cached.token
            return self._fetch_locked()

    def renew(self, stale: str | None) -> str:
        """Renew after a 401 on `stale`, unless another thread has already replaced it."""
        with self._lock:
            cached = self._cached
            if cached is not None and stale is not None and cached.token != stale:
                return cached.token
            return self._fetch_locked()

    def _fetch_locked(self) -> str:
        answer = self._fetch(self.form())
        now = self._clock()
        lifetime = deviations.token_lifetime_s(answer.expires_in)
        margin = min(self._margin, lifetime / 4)
        self._cached = _Cached(
            token=answer.access_token, expires_at=now + lifetime, renew_at=now + lifetime - margin
        )
        self.renewals += 1
        return answer.access_token
