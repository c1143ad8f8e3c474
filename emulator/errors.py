"""The emulator's domain errors and the one place that renders them as Adobe's error bodies.

Endpoints and middleware raise these; `render_error` (installed as the app's exception handler)
turns each into the body shape the real service answers with::

    EmulatorError                 base: status + body + headers
    ├── GatewayError              Adobe I/O gateway header checks: {"error_code", "message"}
    ├── ContentTypeError          a body without a JSON Content-Type (gateway's BadRequestError)
    ├── ImsError                  IMS token endpoint: OAuth {"error", "error_description"}
    ├── ProblemError              Platform service problem body {type, title, status, report, ...}
    │   ├── FlowError             Flow Service codes, type .../FLOW-<code>-<status>
    │   └── DcsError              streaming inlet (Data Collection Core Service) problems
    │       └── DcsAuthError      authenticated inlet without a valid token (status as a string)
    └── CatalogError              Catalog's {"type", "title", "status", "detail"} body
"""

from __future__ import annotations

import json
from typing import Any

from starlette import status as st
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "CatalogError",
    "ContentTypeError",
    "DcsAuthError",
    "DcsError",
    "EmulatorError",
    "FlowError",
    "GatewayError",
    "ImsError",
    "ProblemError",
    "not_found_flow",
    "parse_json",
    "render_error",
]


class EmulatorError(Exception):
    """Any error answered with an Adobe-shaped body."""

    status: int = st.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = {}

    def body(self, request_id: str) -> Any:
        """The JSON body Adobe answers with."""
        return {"message": self.message}


class GatewayError(EmulatorError):
    """A header check of the API gateway failed (missing/invalid token, key, org)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message, status=int(error_code[:3]))
        self.error_code = error_code

    def body(self, request_id: str) -> Any:
        return {"error_code": self.error_code, "message": self.message}


class ContentTypeError(EmulatorError):
    """A request with a body has no (or no JSON) Content-Type header."""

    def __init__(self) -> None:
        super().__init__("A valid content-type must be specified", status=st.HTTP_400_BAD_REQUEST)

    def body(self, request_id: str) -> Any:
        return {
            "type": "/placeholder/type/uri",
            "status": self.status,
            "title": "BadRequestError",
            "detail": self.message,
        }


class ImsError(EmulatorError):
    """The IMS token request was malformed or its client credentials were wrong."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description, status=status)
        self.error = error

    def body(self, request_id: str) -> Any:
        return {"error": self.error, "error_description": self.message}


class ProblemError(EmulatorError):
    """A Platform service refused the request (RFC 7807-like problem body)."""

    service = "PLATFORM"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = st.HTTP_400_BAD_REQUEST,
        title: str | None = None,
        resource_type: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.title = title or _TITLES.get(status, "Bad Request")
        self.resource_type = resource_type

    def body(self, request_id: str) -> Any:
        report: dict[str, Any] = {"detailed-message": self.message, "request-id": request_id}
        if self.resource_type:
            report["type"] = self.resource_type
        return {
            "type": f"https://ns.adobe.com/aep/errors/{self.service}-{self.code}-{self.status}",
            "title": self.title,
            "status": self.status,
            "report": report,
            "errorMessage": self.message,
            "errorDetails": self.message,
        }


class FlowError(ProblemError):
    """A Flow Service error from Adobe's catalogue (`<code>-<status>`, e.g. 1439-404)."""

    service = "FLOW"


class DcsError(ProblemError):
    """The streaming inlet refused a message (Data Collection Core Service problem body)."""

    service = "DCS"

    def __init__(
        self,
        message: str,
        *,
        status: int = st.HTTP_400_BAD_REQUEST,
        title: str = "Invalid request",
        cause: dict[str, Any] | None = None,
        problem_type: str = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet",
    ) -> None:
        super().__init__("DCS", message, status=status, title=title)
        self.cause = cause
        self.problem_type = problem_type

    def body(self, request_id: str) -> Any:
        report: dict[str, Any] = {"message": self.message}
        if self.cause is not None:
            report["cause"] = self.cause
        return {
            "type": self.problem_type,
            "status": self.status,
            "title": self.title,
            "report": report,
        }


class DcsAuthError(DcsError):
    """An authenticated inlet got no token or an invalid one (DCS writes `status` as a string)."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            status=st.HTTP_401_UNAUTHORIZED,
            title="Authorization",
            problem_type="https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization",
        )

    def body(self, request_id: str) -> Any:
        body = super().body(request_id)
        body["status"] = str(self.status)
        return body


class CatalogError(EmulatorError):
    """A Catalog, Schema Registry, Data Prep, Data Access or Profile call was refused."""

    def __init__(
        self, message: str, *, status: int = st.HTTP_400_BAD_REQUEST, code: str = "XDM-1000"
    ) -> None:
        super().__init__(message, status=status)
        self.code = code

    def body(self, request_id: str) -> Any:
        return {
            "type": f"https://ns.adobe.com/aep/errors/{self.code}-{self.status}",
            "title": _TITLES.get(self.status, "Bad Request"),
            "status": self.status,
            "detail": self.message,
            "report": {"detailed-message": self.message, "request-id": request_id},
        }


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Resource not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


def not_found_flow(kind: str, resource_id: str) -> FlowError:
    """The Flow Service 404 for an unknown id of `kind` (flows, connections, ...)."""
    return FlowError(
        "1439",
        f"The requested {kind} resource {resource_id} is not found. "
        "Either it does not exist or it was deleted.",
        status=st.HTTP_404_NOT_FOUND,
        title="Resource not found",
        resource_type=kind,
    )


def parse_json(raw: bytes, *, service: type[ProblemError] | None = None) -> Any:
    """Decode a request body, turning a syntax error into a 400 problem naming line and column.

    Args:
        raw: the request body.
        service: the problem class of the service (Flow Service by default).

    Raises:
        ProblemError: the body is empty or not valid JSON.
    """
    cls = service or FlowError
    if not raw.strip():
        raise cls("1405", "The request body is empty.")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise cls("1406", "The request body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise cls(
            "1406",
            f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.",
        ) from None


def render_error(request: Request, exc: Exception) -> Response:
    """The app's one exception handler: render any emulator or routing error."""
    request_id = (
        request.scope.get("state", {}).get("request_id")
        or request.headers.get("x-request-id")
        or _new_request_id()
    )
    if isinstance(exc, EmulatorError):
        headers = {"x-request-id": request_id, **exc.headers}
        return JSONResponse(exc.body(request_id), status_code=exc.status, headers=headers)
    if isinstance(exc, HTTPException):
        problem = ProblemError(
            str(exc.status_code),
            "No such resource or method on this path."
            if exc.status_code in (404, 405)
            else str(exc.detail),
            status=exc.status_code,
        )
        return JSONResponse(
            problem.body(request_id),
            status_code=exc.status_code,
            headers={"x-request-id": request_id},
        )
    raise exc  # pragma: no cover - only registered for the two classes above


def _new_request_id() -> str:
    import uuid

    return uuid.uuid4().hex
