"""Every error the Platform client raises, in one tree.

```
AEPError                       base: `except AEPError` catches every Platform failure
├── RequestError               no response: the request failed on the wire (method, url)
│   ├── ConnectError           could not connect; the request never left   [retryable]
│   ├── RequestTimeout         no answer in time; the server may have acted [retryable]
│   └── ConnectionDropped      connection closed before a response          [retryable]
├── HTTPStatusError            an error response (status, code, title, request_id, method, url)
│   ├── ClientError            4xx
│   │   ├── BadRequestError        400
│   │   ├── AuthenticationError    401 (after the one renewal)
│   │   ├── ForbiddenError         403
│   │   ├── NotFoundError          404
│   │   ├── PreconditionFailed     412 (stale If-Match etag)
│   │   └── RateLimited            429                                       [retryable]
│   └── ServerError            5xx other than the transient ones
│       └── TransientServerError   500, 502, 503, 504                        [retryable]
├── TokenError                 IMS refused or failed to issue a token
├── AmbiguousMatch             a lookup by name found more than one resource (lists the ids)
└── ResponseFormatError        a 2xx body that is not the shape the API documents
```

Retryability lives on the type (`retryable`), so the one retry loop in `aep.http` never keeps
`if` chains of statuses. `ambiguous` says whether the server may have acted on the request
(a write whose outcome is unknown): a create that fails ambiguously is never re-sent blindly,
the caller looks the resource up by name first (`aep.lookup.create_or_find`).

No error carries a token or a secret: messages are built from the method, the URL (redacted by
the caller), the status and Adobe's error fields only, and `repr` shows the same.
Misuse (bad arguments, a missing configuration) raises ordinary `ValueError`/`TypeError` and stays
outside this tree, so `except AEPError` never swallows a bug.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AEPError",
    "AmbiguousMatch",
    "AuthenticationError",
    "BadRequestError",
    "ClientError",
    "ConnectError",
    "ConnectionDropped",
    "ForbiddenError",
    "HTTPStatusError",
    "NotFoundError",
    "PreconditionFailed",
    "RateLimited",
    "RequestError",
    "RequestTimeout",
    "ResponseFormatError",
    "ServerError",
    "TokenError",
    "TransientServerError",
    "status_error",
]


class AEPError(Exception):
    """Base of every Platform failure."""

    retryable: ClassVar[bool] = False
    """Whether the one retry loop may send the same request again."""
    ambiguous: ClassVar[bool] = False
    """Whether the server may have acted on the request although no success was seen."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RequestError(AEPError):
    """The request failed on the wire and no response was received."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        return f"{self.method} {self.url}: {self.message}"


class ConnectError(RequestError):
    """The connection could not be opened; the request was never sent."""

    retryable = True


class RequestTimeout(RequestError):
    """No complete answer within the timeout; the server may have handled the request."""

    retryable = True
    ambiguous = True


class ConnectionDropped(RequestError):
    """The connection closed after the request was sent and before a response arrived."""

    retryable = True
    ambiguous = True


class HTTPStatusError(AEPError):
    """Platform answered with an error status.

    Attributes:
        status: the HTTP status code.
        code: Adobe's error code: `error_code` of gateway errors, else the problem body's
            `type` (e.g. `https://ns.adobe.com/aep/errors/FLOW-1439-404`), else None.
        title: the problem's `title`, or the gateway's `message`, or the reason phrase.
        detail: longer text when the body has one (`detail`, `report.detailed-message`).
        request_id: the request id Adobe logs (`x-request-id` header or `report.request-id`).
        method: HTTP method.
        url: the URL, query included, as the caller redacted it.
        retry_after: seconds the server asked to wait (`Retry-After`), if any.
    """

    def __init__(
        self,
        *,
        status: int,
        code: str | None,
        title: str,
        detail: str | None,
        request_id: str | None,
        method: str,
        url: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [f"{self.method} {self.url} -> {self.status}"]
        if self.code:
            parts.append(f"[{self.code}]")
        parts.append(self.title)
        text = " ".join(parts)
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class ClientError(HTTPStatusError):
    """A 4xx answer: the request itself was refused."""


class BadRequestError(ClientError):
    """400: the body, a header or a parameter was refused."""


class AuthenticationError(ClientError):
    """401 even after renewing the token once."""


class ForbiddenError(ClientError):
    """403: missing token or api key, or no permission for the org or sandbox."""


class NotFoundError(ClientError):
    """404: no such resource (in this org and sandbox)."""


class PreconditionFailed(ClientError):
    """412: the If-Match etag is stale; read the resource again and re-apply."""


class RateLimited(ClientError):
    """429: too many requests; the server did not act on this one."""

    retryable = True


class ServerError(HTTPStatusError):
    """A 5xx answer that is not worth repeating (e.g. 501 not implemented)."""

    ambiguous = True


class TransientServerError(ServerError):
    """500, 502, 503 or 504: a temporary failure; the server may still have acted."""

    retryable = True


class TokenError(AEPError):
    """IMS did not issue a token (bad client credentials, or IMS unreachable or failing)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        head = "IMS token request failed"
        if self.status is not None:
            head += f" ({self.status}"
            head += f", {self.code})" if self.code else ")"
        return f"{head}: {self.message}"


class AmbiguousMatch(AEPError):
    """A lookup by name found more than one resource; the tool never guesses between them."""

    def __init__(self, kind: str, name: str, ids: list[str]) -> None:
        super().__init__(kind, name, ids)
        self.kind = kind
        self.name = name
        self.ids = ids

    def __str__(self) -> str:
        return (
            f"{len(self.ids)} {self.kind} named {self.name!r}: {', '.join(self.ids)}; "
            "delete all but one, or record the one to keep"
        )


class ResponseFormatError(AEPError):
    """A success response whose body is not what the API documents."""

    def __init__(self, message: str, *, method: str, url: str, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.request_id = request_id

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.method} {self.url}: unexpected response: {self.message}{rid}"


_BY_STATUS: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    412: PreconditionFailed,
    429: RateLimited,
    500: TransientServerError,
    502: TransientServerError,
    503: TransientServerError,
    504: TransientServerError,
}


def status_error(status: int) -> type[HTTPStatusError]:
    """The exception class for an error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return ClientError
    if status >= 500:
        return ServerError
    return HTTPStatusError
