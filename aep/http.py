"""The one send path to Platform: headers, auth, retries, errors, request log, capture.

Every request of every API module goes through `Http.request`:

1. headers: on Platform calls the four AEP requires (`Authorization: Bearer ...`, `x-api-key`,
   `x-gw-ims-org-id`, `x-sandbox-name`), `Content-Type` on bodies;
2. auth: the cached IMS token; on a 401, exactly one renewal and one re-send (`aep.auth`);
3. errors: httpx exceptions and error statuses become the `aep.errors` tree here, once;
4. retries, only here (tenacity): capped exponential backoff with jitter for connect errors,
   429, 500, 502, 503, 504; `Retry-After` honoured; a bounded number of attempts and a total
   deadline. A request that may have been acted on (`ambiguous` error) is re-sent only when the
   caller declared it idempotent: a create (POST) is never retried blindly, the caller looks the
   resource up by name first (`aep.lookup.create_or_find`);
5. one log line per request on the `aep.http` logger (method, URL, status, duration, request id)
   and a redacted `Exchange` in the capture buffer for support bundles.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import tenacity

from aep import errors
from aep.auth import IMSAuth, TokenResponse
from aep.capture import CaptureBuffer, Exchange
from aep.redact import Redactor

__all__ = [
    "DEFAULT_RETRY",
    "IDEMPOTENT_METHODS",
    "LOGGER_NAME",
    "Http",
    "HttpConfig",
    "RetryPolicy",
]

LOGGER_NAME = "aep.http"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MAX_CAPTURED_TEXT = 64_000

logger = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class RetryPolicy:
    """How the one retry loop waits and when it gives up."""

    max_attempts: int = 5
    deadline_s: float = 120.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter_s: float = 0.5
    retry_after_max_s: float = 120.0
    """A longer `Retry-After` than this is not waited out: the call fails instead."""


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class HttpConfig:
    """Where Platform is and who we are (no secret here: the secret lives in `IMSAuth`)."""

    gateway_url: str
    ims_url: str
    inlet_url: str
    org_id: str
    sandbox: str
    client_id: str
    timeout_s: float = 30.0
    retry: RetryPolicy = DEFAULT_RETRY


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class Http:
    """The send path. One instance per `PlatformClient`; safe to share between threads.

    Args:
        config: URLs, org, sandbox, client id, timeout and retry policy.
        auth: the IMS token cache; None only for calls that need no token.
        redactor: masks secrets in logs, errors and captured exchanges.
        capture: where redacted exchanges are kept for support bundles.
        transport: an httpx transport (tests pass `httpx.MockTransport`).
        sleep: how retries wait (tests may pass their own).
    """

    def __init__(
        self,
        config: HttpConfig,
        *,
        auth: IMSAuth | None = None,
        redactor: Redactor | None = None,
        capture: CaptureBuffer | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.auth = auth
        self.redactor = redactor or Redactor()
        self.capture = capture or CaptureBuffer()
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport, timeout=config.timeout_s, follow_redirects=False
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ public API

    def url(self, base: str, path: str) -> str:
        """Join a service base (`/data/foundation/flowservice`) and a path onto the gateway."""
        return self.config.gateway_url.rstrip("/") + base + path

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        platform: bool = True,
    ) -> httpx.Response:
        """Send one logical request, with retries; return the 2xx response.

        Args:
            method: HTTP method.
            url: full URL.
            params: query parameters (a list of pairs repeats a key).
            json: JSON body.
            content_type: overrides `application/json` for the body.
            headers: extra headers (e.g. `If-Match`, `Accept`).
            idempotent: whether re-sending after an ambiguous failure is harmless; defaults
                to True for GET/HEAD/OPTIONS/PUT/DELETE and False otherwise.
            platform: send the four Platform headers (False for unauthenticated inlets).

        Raises:
            errors.AEPError: the last failure once retries are exhausted or not allowed.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        query = list(params.items()) if isinstance(params, Mapping) else list(params or [])
        body = None if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
        started = time.monotonic()
        policy = self.config.retry

        def attempt() -> httpx.Response:
            remaining = policy.deadline_s - (time.monotonic() - started)
            return self._send_authenticated(
                method,
                url,
                query=query,
                body=body,
                body_json=json,
                content_type=content_type,
                headers=headers,
                platform=platform,
                timeout=max(0.5, min(self.config.timeout_s, remaining)),
            )

        return self._with_retries(attempt, idempotent=idempotent)

    def fetch_token(self, form: Mapping[str, str]) -> TokenResponse:
        """Post the IMS token form (`/ims/token/v3`); used by `IMSAuth`.

        Raises:
            errors.TokenError: IMS refused or could not be reached.
        """
        url = self.config.ims_url.rstrip("/") + "/ims/token/v3"

        def attempt() -> httpx.Response:
            return self._send_once(
                "POST",
                url,
                query=[],
                body=urlencode(dict(form)).encode(),
                captured_body=self.redactor.form(form),
                content_type="application/x-www-form-urlencoded",
                headers=None,
                token=None,
                platform=False,
                timeout=self.config.timeout_s,
            )

        try:
            # a token request creates nothing: safe to repeat
            response = self._with_retries(attempt, idempotent=True)
        except errors.HTTPStatusError as exc:
            raise errors.TokenError(
                exc.detail or exc.title, status=exc.status, code=exc.code
            ) from None
        except errors.RequestError as exc:
            raise errors.TokenError(str(exc)) from None
        try:
            answer = TokenResponse.model_validate(response.json())
        except (ValueError, TypeError) as exc:
            raise errors.TokenError(f"unexpected answer from IMS: {type(exc).__name__}") from None
        # a bearer token is a secret too: masked wherever a server echoes it back
        self.redactor.add(answer.access_token)
        return answer

    def json(self, response: httpx.Response) -> Any:
        """The parsed JSON body of a success response.

        Raises:
            errors.ResponseFormatError: the body is not JSON.
        """
        try:
            return response.json()
        except ValueError:
            raise errors.ResponseFormatError(
                "body is not JSON",
                method=response.request.method,
                url=self.redactor.text(str(response.request.url)),
                request_id=response.headers.get("x-request-id"),
            ) from None

    def format_error(self, response: httpx.Response, message: str) -> errors.ResponseFormatError:
        """A `ResponseFormatError` about `response` (for API modules parsing bodies)."""
        return errors.ResponseFormatError(
            self.redactor.text(message),
            method=response.request.method,
            url=self.redactor.text(str(response.request.url)),
            request_id=response.headers.get("x-request-id"),
        )

    # ------------------------------------------------------------------ retries

    def _with_retries(
        self, attempt: Callable[[], httpx.Response], *, idempotent: bool
    ) -> httpx.Response:
        policy = self.config.retry
        exponential = tenacity.wait_exponential_jitter(
            multiplier=policy.backoff_initial_s, max=policy.backoff_max_s, jitter=policy.jitter_s
        )

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, errors.AEPError) or not exc.retryable:
                return False
            if exc.ambiguous and not idempotent:
                return False
            retry_after = getattr(exc, "retry_after", None)
            return not (retry_after is not None and retry_after > policy.retry_after_max_s)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return float(retry_after)
            return float(exponential(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "retrying in %.2fs after %s (attempt %d of %d)",
                state.upcoming_sleep,
                type(exc).__name__,
                state.attempt_number,
                policy.max_attempts,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts)
            | tenacity.stop_before_delay(policy.deadline_s),
            wait=wait,
            retry=tenacity.retry_if_exception(should_retry),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(attempt)

    # ------------------------------------------------------------------ one attempt

    def _send_authenticated(
        self,
        method: str,
        url: str,
        *,
        query: list[tuple[str, Any]],
        body: bytes | None,
        body_json: Any,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        platform: bool,
        timeout: float,
    ) -> httpx.Response:
        token = self.auth.token() if (platform and self.auth is not None) else None
        captured = None if body_json is None else self.redactor.json(body_json, learn=True)

        def send(tok: str | None) -> httpx.Response:
            return self._send_once(
                method,
                url,
                query=query,
                body=body,
                captured_body=captured,
                content_type=content_type,
                headers=headers,
                token=tok,
                platform=platform,
                timeout=timeout,
            )

        try:
            return send(token)
        except errors.AuthenticationError:
            if token is None or self.auth is None:
                raise
            logger.info("401 from Platform: renewing the IMS token once and re-sending")
            fresh = self.auth.renew(token)
            return send(fresh)

    def _headers(
        self,
        *,
        token: str | None,
        platform: bool,
        content_type: str | None,
        has_body: bool,
        extra: Mapping[str, str] | None,
    ) -> dict[str, str]:
        headers: dict[str, str] = {"Accept": "application/json"}
        if platform:
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            headers["x-api-key"] = self.config.client_id
            headers["x-gw-ims-org-id"] = self.config.org_id
            headers["x-sandbox-name"] = self.config.sandbox
        if has_body:
            headers["Content-Type"] = content_type or "application/json"
        if extra:
            headers.update(extra)
        return headers

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        query: list[tuple[str, Any]],
        body: bytes | None,
        captured_body: Any,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        token: str | None,
        platform: bool,
        timeout: float,
    ) -> httpx.Response:
        request = self._client.build_request(
            method,
            url,
            params=[(k, str(v)) for k, v in query] or None,
            content=body,
            headers=self._headers(
                token=token,
                platform=platform,
                content_type=content_type,
                has_body=body is not None,
                extra=headers,
            ),
            timeout=timeout,
        )
        shown_url = self.redactor.text(str(request.url))
        sent_at = datetime.now(UTC).isoformat()
        started = time.monotonic()

        def record(
            ms: float, status: int | None, request_id: str | None, answer: Any, error: str | None
        ) -> None:
            self.capture.record(
                Exchange(
                    method=method,
                    url=shown_url,
                    status=status,
                    request_id=request_id,
                    timestamp=sent_at,
                    duration_ms=round(ms, 1),
                    request_headers=self.redactor.headers(request.headers.items()),
                    request_body=captured_body,
                    response_body=answer,
                    error=error,
                )
            )

        try:
            response = self._client.send(request)
            response.read()
        except httpx.HTTPError as exc:
            duration_ms = (time.monotonic() - started) * 1000
            error = self._map_transport_error(exc, method, shown_url)
            logger.info(
                "%s %s failed: %s %.0fms", method, shown_url, type(error).__name__, duration_ms
            )
            record(duration_ms, None, None, None, error.message)
            raise error from None
        duration_ms = (time.monotonic() - started) * 1000
        request_id = response.headers.get("x-request-id")
        response_body = self._captured_response(response)
        logger.info(
            "%s %s %d %.0fms request-id=%s",
            method,
            shown_url,
            response.status_code,
            duration_ms,
            request_id or "-",
        )
        record(duration_ms, response.status_code, request_id, response_body, None)
        if response.status_code >= 400:
            raise self._status_error(response, method, shown_url, response_body)
        return response

    def _captured_response(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return self.redactor.json(response.json())
        except ValueError:
            return self.redactor.text(response.text[:_MAX_CAPTURED_TEXT])

    @staticmethod
    def _map_transport_error(exc: httpx.HTTPError, method: str, url: str) -> errors.RequestError:
        message = type(exc).__name__
        cls: type[errors.RequestError]
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            cls = errors.ConnectError
        elif isinstance(exc, httpx.TimeoutException):
            cls = errors.RequestTimeout
        else:
            # RemoteProtocolError, ReadError, WriteError: the request may have arrived
            cls = errors.ConnectionDropped
        return cls(message, method=method, url=url)

    def _status_error(
        self, response: httpx.Response, method: str, url: str, body: Any
    ) -> errors.HTTPStatusError:
        """Build the typed error from an error response (body already redacted)."""
        code = title = detail = None
        request_id = response.headers.get("x-request-id")
        if isinstance(body, dict):
            raw_report = body.get("report")
            report: dict[str, Any] = raw_report if isinstance(raw_report, dict) else {}
            code = _str(body.get("error_code")) or _str(body.get("type")) or _str(body.get("error"))
            title = _str(body.get("title")) or _str(body.get("message"))
            detail = (
                _str(body.get("detail"))
                or _str(report.get("detailed-message"))
                or _str(report.get("message"))
                or _str(body.get("errorMessage"))
                or _str(body.get("error_description"))
                or (_str(body.get("message")) if title != body.get("message") else None)
            )
            request_id = request_id or _str(report.get("request-id"))
        elif isinstance(body, str) and body.strip():
            detail = body.strip()[:500]
        cls = errors.status_error(response.status_code)
        return cls(
            status=response.status_code,
            code=code,
            title=title or response.reason_phrase or f"HTTP {response.status_code}",
            detail=detail,
            request_id=request_id,
            method=method,
            url=url,
            retry_after=_retry_after(response),
        )
