"""Flow Service: connections, source and target connections, flows, runs, specs, explore.

Builds requests and parses models only; the send path does headers, retries and errors.
Lists are filtered with `property=` and paged with `_links.next`; a single GET answers
`{"items": [one]}` like a list (spec: single-object GETs reuse the list schema). Creates answer
201 `{"id", "etag"}`; PATCH sends JSON Patch with `If-Match`; flows are enabled and disabled with
`POST /flows/{id}/action?op=enable|disable` (the tutorials' form, see `aep.deviations`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from aep import deviations
from aep._api import Model, Service
from aep.errors import NotFoundError
from aep.http import Http
from aep.lookup import CreateResult, create_or_find, one_or_none

__all__ = [
    "BASE",
    "Connection",
    "ConnectionSpec",
    "Created",
    "Flow",
    "FlowService",
    "FlowSpec",
    "PatchOp",
    "RecordSummary",
    "Run",
    "SourceConnection",
    "SpecRef",
    "TargetConnection",
    "patch",
]

BASE = "/data/foundation/flowservice"


class Created(Model):
    """A create's or update's answer."""

    id: str
    etag: str | None = None


class SpecRef(Model):
    """`{"id", "version"}` reference to a connection or flow spec."""

    id: str
    version: str | None = None


class _Item(Model):
    id: str
    name: str | None = None
    description: str | None = None
    state: str | None = None
    etag: str | None = None
    version: str | None = None
    createdAt: int | None = None
    updatedAt: int | None = None


class Connection(_Item):
    """A base connection (`/connections`)."""

    connectionSpec: SpecRef | None = None
    auth: dict[str, Any] | None = Field(default=None, repr=False)


class SourceConnection(_Item):
    """A source connection (`/sourceConnections`)."""

    baseConnectionId: str | None = None
    connectionSpec: SpecRef | None = None
    data: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


class TargetConnection(_Item):
    """A target connection (`/targetConnections`)."""

    baseConnectionId: str | None = None
    connectionSpec: SpecRef | None = None
    data: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


class Flow(_Item):
    """A dataflow (`/flows`)."""

    flowSpec: SpecRef | None = None
    sourceConnectionIds: list[str] = Field(default_factory=list)
    targetConnectionIds: list[str] = Field(default_factory=list)
    transformations: list[dict[str, Any]] = Field(default_factory=list)
    scheduleParams: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    lastRunDetails: dict[str, Any] | None = None

    @property
    def inlet_url(self) -> str | None:
        """The streaming endpoint of a webhook source (`options.inletUrl`)."""
        value = (self.options or {}).get("inletUrl")
        return str(value) if value else None


class RecordSummary(Model):
    """Record counts of a run (`metrics.recordSummary`)."""

    inputRecordCount: int | None = None
    outputRecordCount: int | None = None
    failedRecordCount: int | None = None


class Run(Model):
    """A flow run (`/runs`)."""

    id: str
    flowId: str | None = None
    etag: str | None = None
    createdAt: int | None = None
    metrics: dict[str, Any] | None = None
    activities: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def status(self) -> str | None:
        """`metrics.statusSummary.status` (compare case-insensitively)."""
        summary = (self.metrics or {}).get("statusSummary") or {}
        value = summary.get("status")
        return str(value) if value is not None else None

    @property
    def record_summary(self) -> RecordSummary:
        """`metrics.recordSummary` (all None when the run has not counted yet)."""
        return RecordSummary.model_validate((self.metrics or {}).get("recordSummary") or {})

    @property
    def error_messages(self) -> list[str]:
        """The run's errors (its own, then its activities'), `code message` each, no repeats.

        An entry that is not an object is taken as the message itself.
        """
        found: list[str] = []
        summaries = [(self.metrics or {}).get("statusSummary")]
        summaries += [a.get("statusSummary") for a in self.activities if isinstance(a, dict)]
        for summary in summaries:
            errs = summary.get("errors") if isinstance(summary, dict) else None
            for err in errs if isinstance(errs, list) else []:
                if isinstance(err, dict):
                    text = f"{err.get('code') or ''} {err.get('message') or ''}".strip()
                else:
                    text = str(err).strip() if err is not None else ""
                if text and text not in found:
                    found.append(text)
        return found

    @property
    def batch_ids(self) -> list[str]:
        """Catalog batch ids the run promoted (`activities[].targetInfo[].reference.ids`)."""
        ids: list[str] = []
        for activity in self.activities:
            infos = activity.get("targetInfo") or []
            for info in infos if isinstance(infos, list) else [infos]:
                ref = (info or {}).get("reference") or {}
                ids.extend(str(i) for i in ref.get("ids") or [])
        return list(dict.fromkeys(ids))


class ConnectionSpec(_Item):
    """A connection spec (`/connectionSpecs`)."""

    providerId: str | None = None
    attributes: dict[str, Any] | None = None


class FlowSpec(_Item):
    """A flow spec (`/flowSpecs`)."""

    providerId: str | None = None
    sourceConnectionSpecIds: list[str] = Field(default_factory=list)
    targetConnectionSpecIds: list[str] = Field(default_factory=list)


PatchOp = dict[str, Any]


def patch(op: Literal["add", "replace", "remove"], path: str, value: Any = None) -> PatchOp:
    """One JSON Patch operation in the form the tutorials send."""
    out: PatchOp = {"op": deviations.patch_op(op), "path": path}
    if op != "remove":
        out["value"] = value
    return out


T = TypeVar("T", bound=_Item)


class Collection(Generic[T]):
    """One Flow Service collection: create, get, list, find by name, patch, delete."""

    def __init__(self, service: FlowService, path: str, model: type[T], kind: str) -> None:
        self._service = service
        self.path = path
        self.model = model
        self.kind = kind

    def create(self, body: dict[str, Any]) -> Created:
        """POST a new resource (sent once: never retried after an ambiguous failure)."""
        s = self._service
        response = s.http.request("POST", s.url(self.path), json=body)
        return s._parse(response, Created, s.http.json(response))

    def get(self, item_id: str) -> T:
        """GET one resource by id (raises `NotFoundError`)."""
        s = self._service
        response = s.http.request("GET", s.url(f"{self.path}/{item_id}"))
        body = s.http.json(response)
        items = body.get("items") if isinstance(body, dict) else None
        data = items[0] if isinstance(items, list) and items else body
        return s._parse(response, self.model, data)

    def list(
        self,
        *,
        properties: Sequence[str] = (),
        limit: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[T]:
        """Every resource matching all `properties` filters (e.g. `name==x`), page by page."""
        params: list[tuple[str, Any]] = [("property", p) for p in properties]
        if limit is not None:
            params.append(("limit", limit))
        if orderby:
            params.append(("orderby", orderby))
        s = self._service
        for response, items in s._pages(self.path, params=params):
            for item in items:
                yield s._parse(response, self.model, item)

    def find_by_name(self, name: str) -> T | None:
        """The one resource named `name`, or None.

        Raises:
            errors.AmbiguousMatch: more than one carries the name.
        """
        matches = [i for i in self.list(properties=[f"name=={name}"]) if i.name == name]
        found = one_or_none(self.kind, name, (m.id for m in matches))
        return next(m for m in matches if m.id == found) if found else None

    def ensure(self, name: str, body: dict[str, Any]) -> CreateResult:
        """Create the resource named `name` unless it exists; safe after ambiguous failures."""
        full = {**body, "name": name}

        def find() -> str | None:
            item = self.find_by_name(name)
            return item.id if item else None

        return create_or_find(
            kind=self.kind, name=name, find=find, create=lambda: self.create(full).id
        )

    def patch(self, item_id: str, etag: str, ops: Sequence[PatchOp]) -> Created:
        """Apply JSON Patch `ops` if the resource is still at `etag` (else `PreconditionFailed`)."""
        s = self._service
        response = s.http.request(
            "PATCH", s.url(f"{self.path}/{item_id}"), json=list(ops), headers={"If-Match": etag}
        )
        return s._parse(response, Created, s.http.json(response))

    def delete(self, item_id: str, *, missing_ok: bool = True) -> bool:
        """DELETE the resource (204); True if this call deleted it.

        A 404 counts as done when `missing_ok`: a DELETE re-sent after a dropped connection
        finds the resource already gone.
        """
        s = self._service
        try:
            s.http.request("DELETE", s.url(f"{self.path}/{item_id}"))
        except NotFoundError:
            if not missing_ok:
                raise
            return False
        return True


class FlowService(Service):
    """Flow Service API (`/data/foundation/flowservice`)."""

    base = BASE

    def __init__(self, http: Http) -> None:
        super().__init__(http)
        self.connections = Collection(self, "/connections", Connection, "base connection")
        self.source_connections = Collection(
            self, "/sourceConnections", SourceConnection, "source connection"
        )
        self.target_connections = Collection(
            self, "/targetConnections", TargetConnection, "target connection"
        )
        self.flows = Collection(self, "/flows", Flow, "flow")
        self.connection_specs = Collection(
            self, "/connectionSpecs", ConnectionSpec, "connection spec"
        )
        self.flow_specs = Collection(self, "/flowSpecs", FlowSpec, "flow spec")

    # -- flows: state
    def enable_flow(self, flow_id: str) -> Created:
        """`POST /flows/{id}/action?op=enable`."""
        return self._action(flow_id, "enable")

    def disable_flow(self, flow_id: str) -> Created:
        """`POST /flows/{id}/action?op=disable`."""
        return self._action(flow_id, "disable")

    def _action(self, flow_id: str, action: Literal["enable", "disable"]) -> Created:
        response = self.http.request(
            "POST",
            self.url(f"/flows/{flow_id}/action"),
            params=deviations.flow_action_op(action),
            idempotent=True,  # enabling an enabled flow changes nothing
        )
        return self._parse(response, Created, self.http.json(response))

    # -- runs
    def runs(self, flow_id: str, *, orderby: str | None = "-createdAt") -> Iterator[Run]:
        """The runs of a flow, newest first (`GET /runs?property=flowId==<id>`)."""
        params: list[tuple[str, Any]] = [("property", f"flowId=={flow_id}")]
        if orderby:
            params.append(("orderby", orderby))
        for response, items in self._pages("/runs", params=params):
            for item in items:
                yield self._parse(response, Run, item)

    def get_run(self, run_id: str) -> Run:
        """One run by id."""
        response = self.http.request("GET", self.url(f"/runs/{run_id}"))
        body = self.http.json(response)
        items = body.get("items") if isinstance(body, dict) else None
        return self._parse(response, Run, items[0] if items else body)

    def create_run(self, flow_id: str, params: dict[str, Any]) -> Created:
        """Start an ad-hoc run of a `once` flow (`POST /runs`); sent once."""
        response = self.http.request(
            "POST", self.url("/runs"), json={"flowId": flow_id, "params": params}
        )
        return self._parse(response, Created, self.http.json(response))

    # -- explore
    def explore(
        self,
        connection_id: str,
        *,
        object_type: Literal["root", "folder", "file", "rest", "table"],
        object: str | None = None,
        file_type: str | None = None,
        preview: bool | None = None,
        source_params: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None,
    ) -> Any:
        """`GET /connections/{id}/explore`; `source_params` is sent base64-encoded JSON.

        Returns:
            The parsed body: a list of folder/file items, or `{"format", "schema", "data"}`.
        """
        params: list[tuple[str, Any]] = [
            ("objectType", deviations.explore_object_type(object_type))
        ]
        if object is not None:
            params.append(("object", object))
        if file_type is not None:
            params.append(("fileType", file_type))
        if preview is not None:
            params.append(("preview", "true" if preview else "false"))
        if source_params is not None:
            params.append(("sourceParams", encode_source_params(source_params)))
        params.extend((extra or {}).items())
        response = self.http.request(
            "GET", self.url(f"/connections/{connection_id}/explore"), params=params
        )
        return self.http.json(response)

    def test_connection(self, connection_id: str) -> bool:
        """`GET /connections/{id}/test` → its `result`."""
        response = self.http.request("GET", self.url(f"/connections/{connection_id}/test"))
        body = self.http.json(response)
        return bool(body.get("result")) if isinstance(body, dict) else False


def encode_source_params(params: dict[str, Any]) -> str:
    """Explore's `sourceParams`: base64 of the compact JSON (e.g. `{"resourcePath": "charges"}`).

    Example:
        >>> encode_source_params({"resourcePath": "charges"})
        'eyJyZXNvdXJjZVBhdGgiOiJjaGFyZ2VzIn0='
    """
    raw = json.dumps(params, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")
