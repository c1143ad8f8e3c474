"""Check recorded HTTP exchanges against Adobe's OpenAPI specs (spec/adobe-openapi/).

Loading normalises what openapi-core cannot take as is: integer status-code keys (catalog.yaml,
streaming-ingestion.yaml) become strings, `servers` become the emulator's base URL plus the
service path, spec self-validation is off, and schema-registry.yaml (Swagger 2.0) is converted
once to OpenAPI 3.0. Requests are rewritten to the spec's form by emulator.deviations first.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

from emulator.deviations import response_to_spec_form, to_spec_form

SPEC_DIR = Path(__file__).parents[2] / "spec" / "adobe-openapi"
SERVICES = {
    "/data/foundation/flowservice": "flow-service.yaml",
    "/data/foundation/catalog": "catalog.yaml",
    "/data/foundation/conversion": "data-prep.yaml",
    "/data/foundation/schemaregistry": "schema-registry.yaml",
    "/data/foundation/export": "data-access.yaml",
    "/data/core": "profile.yaml",
    "/collection": "streaming-ingestion.yaml",
}


@dataclass
class Exchange:
    """One request and its response as they crossed the wire."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    def json(self) -> Any:
        """The decoded response body."""
        return json.loads(self.response_body) if self.response_body else None


class RecordingTransport(httpx.BaseTransport):
    """An httpx transport that keeps every exchange."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        self.exchanges.append(
            Exchange(
                request.method,
                str(request.url),
                dict(request.headers),
                request.read(),
                response.status_code,
                dict(response.headers),
                body,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def close(self) -> None:
        self.inner.close()


def _stringify_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k) if isinstance(k, int) else k: _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


def _refs_to_components(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                value = value.replace("#/definitions/", "#/components/schemas/").replace(
                    "#/parameters/", "#/components/parameters/"
                )
            out[key] = _refs_to_components(value)
        return out
    if isinstance(node, list):
        return [_refs_to_components(v) for v in node]
    return node


_PARAM_SCHEMA_KEYS = (
    "type",
    "format",
    "enum",
    "items",
    "default",
    "minimum",
    "maximum",
    "pattern",
    "collectionFormat",
)


def _param(
    param: dict[str, Any], consumes: list[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(OpenAPI 3 parameter, requestBody) of one Swagger 2 parameter."""
    if "$ref" in param:
        return param, None
    if param.get("in") == "body":
        content = {ct: {"schema": param.get("schema", {})} for ct in consumes}
        return None, {"content": content, "required": bool(param.get("required"))}
    schema = {k: param[k] for k in _PARAM_SCHEMA_KEYS if k in param and k != "collectionFormat"}
    converted = {k: v for k, v in param.items() if k not in _PARAM_SCHEMA_KEYS}
    converted["schema"] = schema or {"type": "string"}
    return converted, None


def swagger2_to_openapi3(doc: dict[str, Any]) -> dict[str, Any]:
    """A minimal, faithful-enough Swagger 2.0 -> OpenAPI 3.0 conversion (paths, parameters,
    bodies, responses, definitions) for validating exchanges."""
    consumes = doc.get("consumes", ["application/json"])
    produces = doc.get("produces", ["application/json"])
    body_params: dict[str, dict[str, Any]] = {}
    parameters: dict[str, Any] = {}
    for name, param in (doc.get("parameters") or {}).items():
        converted, body = _param(param, consumes)
        if body is not None:
            body_params[name] = body
        else:
            parameters[name] = converted
    paths: dict[str, Any] = {}
    for path, item in (doc.get("paths") or {}).items():
        new_item: dict[str, Any] = {}
        for method, op in item.items():
            if method == "parameters":
                new_item["parameters"] = [p for p in (_param(x, consumes)[0] for x in op) if p]
                continue
            new_op = {
                k: v
                for k, v in op.items()
                if k not in ("parameters", "responses", "consumes", "produces")
            }
            op_consumes = op.get("consumes", consumes)
            op_produces = op.get("produces", produces)
            new_params = []
            for p in op.get("parameters", []):
                ref = p.get("$ref", "") if isinstance(p, dict) else ""
                name = ref.rsplit("/", 1)[-1] if ref.startswith("#/parameters/") else None
                if name in body_params:
                    new_op["requestBody"] = {
                        "content": {
                            ct: next(iter(body_params[name]["content"].values()))
                            for ct in op_consumes
                        },
                        "required": body_params[name]["required"],
                    }
                    continue
                converted, body = _param(p, op_consumes)
                if body is not None:
                    new_op["requestBody"] = body
                elif converted is not None:
                    new_params.append(converted)
            new_op["parameters"] = new_params
            responses = {}
            for code, resp in (op.get("responses") or {}).items():
                new_resp = {"description": resp.get("description", "")}
                if "schema" in resp:
                    new_resp["content"] = {ct: {"schema": resp["schema"]} for ct in op_produces}
                responses[str(code)] = new_resp
            new_op["responses"] = responses
            new_item[method] = new_op
        paths[path] = new_item
    out = {
        "openapi": "3.0.1",
        "info": doc.get("info", {"title": "", "version": ""}),
        "paths": paths,
        "components": {"schemas": doc.get("definitions", {}), "parameters": parameters},
    }
    return _refs_to_components(out)


@functools.cache
def _raw_spec(filename: str) -> dict[str, Any]:
    doc = _stringify_keys(yaml.safe_load((SPEC_DIR / filename).read_text()))
    if doc.get("swagger") == "2.0":
        doc = swagger2_to_openapi3(doc)
    return dict(doc)


@functools.cache
def load_spec(prefix: str, base_url: str) -> OpenAPI:
    """The OpenAPI object of the service at `prefix`, served at base_url + prefix."""
    doc = dict(_raw_spec(SERVICES[prefix]))
    # streaming-ingestion.yaml's paths carry /collection themselves
    served_at = "" if prefix == "/collection" else prefix
    doc["servers"] = [{"url": base_url.rstrip("/") + served_at}]
    return OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))


def _undocumented_body(exc: Exception, status: int) -> bool:
    """True when there is nothing to check: the spec documents the status but no body for it
    (`content: {}`), the status is 204 (no body whatever the spec says), or the path is not
    Adobe's and the emulator said so (404/405)."""
    text = str(exc)
    if "Valid mimetypes: []" in text:
        return True
    if type(exc).__name__ == "PathNotFound" and status in (404, 405):
        return True  # a path Adobe does not have, answered as such
    return status == 204 and type(exc).__name__ == "MissingData"


class SpecChecker:
    """Validates exchanges against the spec of their service, deviations applied."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._specs: dict[str, OpenAPI] = {}

    def _spec(self, prefix: str) -> OpenAPI:
        if prefix not in self._specs:
            self._specs[prefix] = load_spec(prefix, self.base_url)
        return self._specs[prefix]

    def problems(self, exchange: Exchange) -> list[str]:
        """What is wrong with one exchange (empty when it conforms); non-Adobe paths pass."""
        parts = urlsplit(exchange.url)
        prefix = next((p for p in SERVICES if parts.path.startswith(p + "/")), None)
        if prefix is None:
            return []
        query = parse_qsl(parts.query, keep_blank_values=True)
        try:
            body = json.loads(exchange.request_body) if exchange.request_body else None
        except ValueError:  # a request sent malformed on purpose: only its answer is checked
            body = None
        path, query, req_headers, body = to_spec_form(
            exchange.method, parts.path, query, exchange.request_headers, body
        )
        content_type = req_headers.get("content-type", "application/json")
        request = MockRequest(
            self.base_url,
            exchange.method,
            path,
            args=query,
            headers=req_headers,
            data=json.dumps(body).encode() if body is not None else None,
            content_type=content_type.split(";")[0],
        )
        response_body = exchange.response_body
        if exchange.response_headers.get("content-type", "").startswith("application/json"):
            decoded = response_to_spec_form(exchange.method, parts.path, query, exchange.json())
            response_body = json.dumps(decoded).encode()
        response = MockResponse(
            response_body,
            status_code=exchange.status,
            headers=exchange.response_headers,
            content_type=exchange.response_headers.get("content-type", "application/json").split(
                ";"
            )[0],
        )
        spec = self._spec(prefix)
        found = []
        checks = [("response", lambda: spec.validate_response(request, response))]
        if (
            exchange.status < 400
        ):  # a refused request may break the spec: that is why it was refused
            checks.insert(0, ("request", lambda: spec.validate_request(request)))
        for label, check in checks:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # the specs' own style
                    check()
            except ResponseNotFound:
                continue  # a status the spec does not document for this operation
            except Exception as exc:
                if _undocumented_body(exc, exchange.status):
                    continue
                detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", []) or [])
                found.append(
                    f"{exchange.method} {parts.path} {exchange.status} {label}: "
                    f"{type(exc).__name__}: {exc} {detail}".strip()
                )
        return found
