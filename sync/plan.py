"""Desired vs actual: the diff per resource, computed by the one code path `plan` and `apply` share.

`Reconciler` walks every flow's chain in order (schema, identity descriptor, dataset, base
connection, source connection, target connection, mapping set, flow). For each resource it
reads what exists (by the id recorded in the history, else by its deterministic name or tag),
compares it with the desired state and decides: `create`, `update` (with the JSON Patch ops, by
path and kind) or `no-op`. With `act=False` (`plan`) that is all it does: no write reaches the
Platform or the history. With `act=True` (`sync.apply`) the same walk acts on each decision as
it makes it: creates go through `aep.lookup.create_or_find` (never a duplicate, also after a
lost response), updates are PATCHed with `If-Match` of the version just read (on a 412 the
resource is read again and the same ops, which only set desired values, are sent once more on
its new version), flows are enabled through their action endpoint.

Compared for drift: descriptions and names (a resource found by its recorded id under another
name), references between resources, source/target `data` and `params`, the base connection's
non-secret auth params and (by fingerprint, since GETs mask them) its secrets, the mapping set's
(source, destination) pairs, the flow's schedule (`frequency`, `interval`; never `startTime`,
which cannot change once passed), mapping id/version and state. Schemas are created but never
changed (Schema Registry changes are additive and left to people).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from typing import Any

from aep import deviations, errors
from aep.client import PlatformClient
from aep.flows import Flow
from aep.lookup import CreateResult, create_or_find
from aep.mappings import with_tag
from aep.names import description_tag, resource_name
from sync.changes import NEW, Action, Change, FieldChange, Plan, diff, merged, project
from sync.desired import DATA_LAKE_SPEC, XED_FULL, DesiredState, FlowDecl
from sync.history import History

__all__ = [
    "Action",
    "Change",
    "FieldChange",
    "Plan",
    "Reconciler",
    "SyncError",
    "plan",
]

logger = logging.getLogger("sync.plan")

MASKED = "******"


class SyncError(Exception):
    """The desired state cannot be reached without a person (e.g. an auth type changed)."""


def _fingerprint(auth: dict[str, Any]) -> str:
    """sha256 of the whole auth object as sent (GETs mask secrets, so they cannot be compared)."""
    return hashlib.sha256(json.dumps(auth, sort_keys=True).encode()).hexdigest()


def _masked(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 3 and set(value) == {"*"}


class Reconciler:
    """Walk the desired chains, decide per resource, and (with `act`) carry the decisions out.

    Args:
        client: the Platform client.
        desired: the desired dataflows.
        history: the sync history (recorded ids, secret fingerprints); None reads nothing
            (e.g. a plan before any apply).
        act: False computes the plan and writes nothing; True applies it.
    """

    def __init__(
        self,
        client: PlatformClient,
        desired: DesiredState,
        history: History | None,
        *,
        act: bool,
    ) -> None:
        self.client = client
        self.desired = desired
        self.history = history
        self.act = act
        self.plan = Plan(applied=act)
        self._tenant: str | None = None
        self._bases: dict[str, str | None] = {}
        for secret in desired.secret_values():
            client.add_secret(secret)

    # -- helpers
    @property
    def tenant(self) -> str:
        """The org's tenant id (read once)."""
        if self._tenant is None:
            self._tenant = self.client.schemas.tenant_id()
        return self._tenant

    def _name(self, key: str, role: str) -> str:
        return resource_name(self.desired.prefix, f"{key}.{role}")

    def _recorded(self, key: str) -> str | None:
        return self.history.recorded_id(key) if self.history is not None else None

    def _record(self, key: str, kind: str, resource_id: str | None) -> None:
        if self.act and self.history is not None and resource_id and resource_id != NEW:
            self.history.record_id(key, kind, resource_id)

    def _add(self, change: Change) -> Change:
        self.plan.changes.append(change)
        return change

    def _log(self, changes: list[Change]) -> None:
        for change in changes:
            level = logging.DEBUG if change.action == Action.NOOP else logging.INFO
            logger.log(level, "%s", change.line(done=self.act))

    def _find_flow_service(self, collection: Any, key: str, name: str) -> Any | None:
        """By recorded id (it may have been renamed), else by name."""
        recorded = self._recorded(key)
        if recorded:
            try:
                return collection.get(recorded)
            except errors.NotFoundError:
                pass
        return collection.find_by_name(name)

    def _create_named(self, collection: Any, name: str, body: dict[str, Any]) -> CreateResult:
        """Create a Flow Service resource just looked up and not found (no second look first)."""

        def find() -> str | None:
            item = collection.find_by_name(name)
            return item.id if item else None

        return create_or_find(
            kind=collection.kind,
            name=name,
            find=find,
            create=lambda: collection.create({**body, "name": name}).id,
            look_first=False,
        )

    def _update_flow_service(
        self, collection: Any, key: str, name: str, item: Any, fields: list[FieldChange]
    ) -> None:
        """PATCH `fields` with If-Match; on a 412 read again and send the same ops once more
        (they only set desired values, so they hold on whatever version a person made)."""
        ops = [f.op() for f in fields]
        try:
            collection.patch(item.id, item.etag or "", ops)
        except errors.PreconditionFailed:
            fresh = collection.get(item.id)
            logger.warning(
                "%s %s changed meanwhile (412); re-sending on its new version", key, name
            )
            collection.patch(fresh.id, fresh.etag or "", ops)

    # -- the walk
    def run(self) -> Plan:
        """Decide (and with `act`, carry out) every resource of every desired flow."""
        for key, flow in self.desired.flows.items():
            start = len(self.plan.changes)
            try:
                self._flow_chain(key, flow)
            except BaseException:
                if self.act and len(self.plan.changes) > start:
                    self.plan.changes[-1].note = "FAILED"  # the decision being carried out
                raise
            finally:  # what was done is logged even when the chain stops part-way
                self._log(self.plan.changes[start:])
        self.plan.orphans = self._orphans()
        return self.plan

    def _orphans(self) -> list[str]:
        """Recorded flows whose key left the flows file and that still exist."""
        if self.history is None:
            return []
        out = []
        for rkey, (kind, resource_id) in self.history.recorded().items():
            key = rkey.removesuffix(".flow")
            if kind != "flow" or key in self.desired.flows:
                continue
            try:
                found = self.client.flows.flows.get(resource_id)
            except errors.NotFoundError:
                continue
            out.append(f"{key}: {found.name} ({found.id}, {found.state})")
            logger.warning("flow %s (%s) is no longer in the flows file", found.name, found.id)
        return out

    def _flow_chain(self, key: str, flow: FlowDecl) -> None:
        schema_id = self._schema(key, flow)
        self._identity(key, flow, schema_id)
        dataset_id = self._dataset(key, flow, schema_id)
        base_id = self._base_connection(flow.base_connection) if flow.base_connection else None
        source_id = self._source(key, flow, base_id)
        target_id = self._target(key, flow, schema_id, dataset_id)
        mapping_id, mapping_version = self._mapping(key, flow, schema_id)
        self._flow(key, flow, source_id, target_id, mapping_id, mapping_version)

    # -- schema and identity
    def _schema(self, key: str, flow: FlowDecl) -> str:
        decl = flow.schema_
        if decl.id:
            try:
                self.client.schemas.get_schema(decl.id)
            except errors.NotFoundError:
                raise SyncError(
                    f"flows.{key}.schema.id: no schema {decl.id} in this sandbox; fix the id or "
                    "remove it to let aep-sync create the schema"
                ) from None
            self._add(Change(key, "schema", decl.id, Action.NOOP, decl.id, note="configured id"))
            return decl.id
        title = self._name(key, "schema")
        found = self.client.schemas.find_schema_by_title(title)
        if found is not None:
            self._add(Change(key, "schema", title, Action.NOOP, found.id))
            self._record(f"{key}.schema", "schema", found.id)
            return found.id
        change = self._add(Change(key, "schema", title, Action.CREATE, NEW))
        if not self.act:
            return NEW
        body = decl.body(title, self.tenant)
        schemas = self.client.schemas

        def find_schema() -> str | None:
            schema = schemas.find_schema_by_title(title)
            return schema.id if schema else None

        result = create_or_find(
            kind="schema",
            name=title,
            find=find_schema,
            create=lambda: schemas.create_schema(body).id,
            look_first=False,
        )
        change.id = result.id
        self._record(f"{key}.schema", "schema", result.id)
        return result.id

    def _identity(self, key: str, flow: FlowDecl, schema_id: str) -> None:
        identity = flow.schema_.identity
        if not identity or flow.schema_.id:
            return
        path, namespace = identity["path"], identity["namespace"]
        name = f"{path} ({namespace})"

        def find() -> str | None:
            for d in self.client.schemas.identity_descriptors(schema_id):
                if d.get("xdm:sourceProperty") == path and d.get("xdm:isPrimary", True):
                    return str(d.get("@id") or path)
            return None

        existing = find() if schema_id != NEW else None
        if existing is not None:
            self._add(Change(key, "identity", name, Action.NOOP, existing))
            return
        change = self._add(Change(key, "identity", name, Action.CREATE, NEW))
        if not self.act:
            return
        result = create_or_find(
            kind="identity descriptor",
            name=name,
            find=find,
            create=lambda: self.client.schemas.primary_identity(schema_id, path, namespace),
        )
        change.id = result.id

    # -- dataset
    def _dataset(self, key: str, flow: FlowDecl, schema_id: str) -> str:
        decl = flow.dataset
        catalog = self.client.catalog
        if decl.id:
            try:
                dataset = catalog.get_dataset(decl.id)
            except errors.NotFoundError:
                raise SyncError(
                    f"flows.{key}.dataset.id: no dataset {decl.id} in this sandbox; fix the id "
                    "or remove it to let aep-sync create the dataset"
                ) from None
            name, dataset_id = decl.id, decl.id
        else:
            name = self._name(key, "dataset")
            found = self._recorded_dataset(key, name)
            if found is None:
                change = self._add(Change(key, "dataset", name, Action.CREATE, NEW))
                if not self.act:
                    return NEW
                body: dict[str, Any] = {
                    "description": flow.description,
                    "schemaRef": {"id": schema_id, "contentType": XED_FULL},
                    "fileDescription": {
                        "persisted": True,
                        "containerFormat": "parquet",
                        "format": "parquet",
                    },
                }
                if decl.profile:
                    body["tags"] = {
                        "unifiedProfile": ["enabled:true"],
                        "unifiedIdentity": ["enabled:true"],
                    }
                result = create_or_find(
                    kind="dataset",
                    name=name,
                    find=lambda: catalog.find_dataset_by_name(name),
                    create=lambda: catalog.create_dataset({**body, "name": name}),
                    look_first=False,
                )
                change.id = result.id
                self._record(f"{key}.dataset", "dataset", result.id)
                return result.id
            dataset_id = found
            dataset = catalog.get_dataset(found)
        fields: list[FieldChange] = []
        schema_ref = (dataset.schemaRef or {}).get("id")
        if schema_id != NEW and schema_ref != schema_id:
            raise SyncError(
                f"{key}: dataset {dataset_id} is on schema {schema_ref}, the flow's schema is "
                f"{schema_id}; a dataset's schema cannot change: set flows.{key}.dataset.id or "
                "delete the dataset"
            )
        profile_tags = (dataset.tags or {}).get("unifiedProfile") or []
        enabled = any(str(t).replace(" ", "").lower() == "enabled:true" for t in profile_tags)
        if decl.profile and not enabled:
            fields.append(
                FieldChange("/tags/unifiedProfile", "add", profile_tags, ["enabled:true"])
            )
        action = Action.UPDATE if fields else Action.NOOP
        self._add(Change(key, "dataset", name, action, dataset_id, fields))
        self._record(f"{key}.dataset", "dataset", dataset_id)
        if fields and self.act:
            catalog.enable_profile(dataset_id)
        return dataset_id

    def _recorded_dataset(self, key: str, name: str) -> str | None:
        """The dataset by its recorded id (one GET) if it still carries its name, else by name."""
        recorded = self._recorded(f"{key}.dataset")
        if recorded:
            try:
                if self.client.catalog.get_dataset(recorded).name == name:
                    return recorded
            except errors.NotFoundError:
                pass
        return self.client.catalog.find_dataset_by_name(name)

    # -- base connection (shared)
    def _base_connection(self, conn_key: str) -> str | None:
        if conn_key in self._bases:
            return self._bases[conn_key]
        decl = self.desired.connections[conn_key]
        label = f"connections.{conn_key}"
        rkey = f"{conn_key}.base"
        name = self._name(conn_key, "base")
        collection = self.client.flows.connections
        auth = self.desired.auth(conn_key)
        fingerprint = _fingerprint(auth)
        item = self._find_flow_service(collection, rkey, name)
        if item is None:
            change = self._add(Change(label, "base connection", name, Action.CREATE, NEW))
            if not self.act:
                self._bases[conn_key] = NEW
                return NEW
            body = {
                "description": decl.description,
                "connectionSpec": {"id": decl.connection_spec_id, "version": "1.0"},
                "auth": auth,
            }
            result = self._create_named(collection, name, body)
            change.id = result.id
            self._record(rkey, "base connection", result.id)
            if self.history is not None:
                self.history.record_fingerprint(conn_key, fingerprint)
            self._bases[conn_key] = result.id
            return result.id
        current_auth = item.auth or {}
        if current_auth.get("specName") not in (None, decl.auth_spec_name):
            raise SyncError(
                f"{label}: base connection {item.id} uses {current_auth.get('specName')!r}, the "
                f"configuration asks for {decl.auth_spec_name!r}; AEP cannot change the auth "
                "type of a connection: delete it (and its flows) or change flows.prefix"
            )
        fields = [
            f
            for f in (
                diff("/name", item.name, name),
                diff("/description", item.description or None, decl.description or None),
            )
            if f
        ]
        now = current_auth.get("params") or {}
        stale = [
            p
            for p, v in decl.params.items()
            if not _masked(now.get(p)) and str(now.get(p)) != str(v)
        ]
        known = self.history.fingerprint(conn_key) if self.history is not None else None
        secrets_changed = known != fingerprint
        if stale or secrets_changed:
            masked = {k: (MASKED if k in decl.secrets else v) for k, v in auth["params"].items()}
            before = {k: v for k, v in now.items() if k in auth["params"]}
            fields.append(FieldChange("/auth/params", "replace", before, masked))
        note = None
        if secrets_changed:
            note = "credentials not sent from here yet" if known is None else "credentials rotated"
        action = Action.UPDATE if fields else Action.NOOP
        self._add(Change(label, "base connection", name, action, item.id, fields, note))
        self._record(rkey, "base connection", item.id)
        if fields and self.act:
            real = [
                FieldChange("/auth/params", "replace", None, auth["params"])
                if f.path == "/auth/params"
                else f
                for f in fields
            ]
            self._update_flow_service(collection, rkey, name, item, real)
            if self.history is not None:
                self.history.record_fingerprint(conn_key, fingerprint)
        self._bases[conn_key] = str(item.id)
        return str(item.id)

    # -- source and target connections
    def _source(self, key: str, flow: FlowDecl, base_id: str | None) -> str:
        rkey = f"{key}.source"
        name = self._name(key, "source")
        desired: dict[str, Any] = {
            "description": flow.source_description or None,
            "baseConnectionId": base_id,
            "data": flow.source_data,
            "params": flow.source_params,
        }
        body: dict[str, Any] = {
            "connectionSpec": {"id": flow.connection_spec_id, "version": "1.0"},
            **{k: v for k, v in desired.items() if v is not None},
        }
        if flow.provider_id:
            body["providerId"] = flow.provider_id
        return self._connection(
            key,
            rkey,
            "source connection",
            name,
            self.client.flows.source_connections,
            body,
            desired,
        )

    def _target(self, key: str, flow: FlowDecl, schema_id: str, dataset_id: str) -> str:
        rkey = f"{key}.target"
        name = self._name(key, "target")
        data: dict[str, Any] = {"schema": {"id": schema_id, "version": flow.target_schema_version}}
        if flow.target_format:
            data = {"format": flow.target_format, **data}
        desired: dict[str, Any] = {
            "description": flow.target_description or None,
            "data": data,
            "params": {"dataSetId": dataset_id},
        }
        body = {
            "connectionSpec": {"id": DATA_LAKE_SPEC, "version": "1.0"},
            **{k: v for k, v in desired.items() if v is not None},
        }
        return self._connection(
            key,
            rkey,
            "target connection",
            name,
            self.client.flows.target_connections,
            body,
            desired,
        )

    def _connection(
        self,
        key: str,
        rkey: str,
        resource: str,
        name: str,
        collection: Any,
        body: dict[str, Any],
        desired: dict[str, Any],
    ) -> str:
        item = self._find_flow_service(collection, rkey, name)
        if item is None:
            change = self._add(Change(key, resource, name, Action.CREATE, NEW))
            if not self.act:
                return NEW
            result = self._create_named(collection, name, body)
            change.id = result.id
            self._record(rkey, resource, result.id)
            return result.id
        fields = [f for f in [diff("/name", item.name, name)] if f]
        for field_name, want in desired.items():
            have = getattr(item, field_name, None)
            if field_name == "description":
                have = have or None
            shown = project(have, want)
            if shown == want:
                continue
            differs = diff(f"/{field_name}", shown, want)
            if differs:
                # sent: the desired object over the current one, so server-side fields stay
                fields.append(FieldChange(differs.path, differs.kind, shown, merged(have, want)))
        action = Action.UPDATE if fields else Action.NOOP
        self._add(Change(key, resource, name, action, item.id, fields))
        self._record(rkey, resource, item.id)
        if fields and self.act:
            self._update_flow_service(collection, rkey, name, item, fields)
        return str(item.id)

    # -- mapping set
    def _mapping(self, key: str, flow: FlowDecl, schema_id: str) -> tuple[str, int | None]:
        rkey = f"{key}.mapping"
        tag = description_tag(self.desired.prefix, rkey)
        mappings = self.client.mappings
        current = None
        recorded = self._recorded(rkey)
        if recorded:
            with contextlib.suppress(errors.NotFoundError):
                current = mappings.get_mapping_set(recorded)
            if current is not None and not current.has_tag(tag):
                current = None
        if current is None:
            found_id = mappings.find_mapping_set(tag=tag)
            current = mappings.get_mapping_set(found_id) if found_id else None
        body = flow.mapping.body(schema_id, self.tenant)
        if current is None:
            change = self._add(Change(key, "mapping set", tag, Action.CREATE, NEW))
            if not self.act:
                return NEW, None
            tagged = with_tag(body, tag)
            result = create_or_find(
                kind="mapping set",
                name=tag,
                find=lambda: mappings.find_mapping_set(tag=tag),
                create=lambda: mappings.create_mapping_set(tagged).id,
                look_first=False,
            )
            change.id = result.id
            self._record(rkey, "mapping set", result.id)
            if result.recovered:
                return result.id, mappings.get_mapping_set(result.id).version or 0
            return result.id, 0
        found = current.id
        have = [
            (
                str(m.get("source") or m.get("sourceAttribute")),
                str(m.get("destination") or m.get("destinationXdmPath")),
            )
            for m in current.mappings
        ]
        want = flow.mapping.pairs(self.tenant)
        fields: list[FieldChange] = []
        if have != want:
            fields.append(
                FieldChange(
                    "/mappings",
                    "replace",
                    [f"{s} -> {d}" for s, d in have if (s, d) not in want],
                    [f"{s} -> {d}" for s, d in want if (s, d) not in have],
                )
            )
        have_schema = (
            ((current.model_extra or {}).get("outputSchema") or {}).get("schemaRef") or {}
        ).get("id") or (current.model_extra or {}).get("xdmSchema")
        if schema_id != NEW and have_schema and have_schema != schema_id:
            fields.append(
                FieldChange("/outputSchema/schemaRef/id", "replace", have_schema, schema_id)
            )
        action = Action.UPDATE if fields else Action.NOOP
        note = "new version" if fields else None
        self._add(Change(key, "mapping set", tag, action, found, fields, note))
        self._record(rkey, "mapping set", found)
        if fields and not self.act:
            return found, None  # the flow will move to the version the update makes
        if fields:
            updated = self.client.mappings.put_mapping_set(found, tag, body)
            return found, updated.version or 0
        return found, current.version or 0

    # -- flow
    def _flow(
        self,
        key: str,
        flow: FlowDecl,
        source_id: str,
        target_id: str,
        mapping_id: str,
        mapping_version: int | None,
    ) -> None:
        rkey = f"{key}.flow"
        name = self._name(key, "flow")
        collection = self.client.flows.flows
        version = deviations.mapping_version(mapping_version or 0)
        transformation = {
            "name": "Mapping",
            "params": {"mappingId": mapping_id, "mappingVersion": version},
        }
        item: Flow | None = self._find_flow_service(collection, rkey, name)
        if item is None:
            change = self._add(Change(key, "flow", name, Action.CREATE, NEW))
            if not self.act:
                return
            body: dict[str, Any] = {
                "description": flow.description,
                "flowSpec": {"id": flow.flow_spec_id, "version": "1.0"},
                "sourceConnectionIds": [source_id],
                "targetConnectionIds": [target_id],
                "transformations": [transformation],
            }
            if flow.schedule:
                body["scheduleParams"] = {
                    "startTime": deviations.schedule_start_time(int(time.time())),
                    **flow.schedule,
                }
            result = self._create_named(collection, name, body)
            change.id = result.id
            self._record(rkey, "flow", result.id)
            if flow.state == "disabled":
                self.client.flows.disable_flow(result.id)
            return
        if item.flowSpec is not None and item.flowSpec.id != flow.flow_spec_id:
            raise SyncError(
                f"{key}: flow {item.id} uses flow spec {item.flowSpec.id}, the configuration "
                f"asks for {flow.flow_spec_id}; a flow's spec cannot change: delete the flow "
                f"(`{name}`) and apply again"
            )
        fields = [
            f
            for f in (
                diff("/name", item.name, name),
                diff("/description", item.description or None, flow.description or None),
                diff("/sourceConnectionIds", item.sourceConnectionIds, [source_id]),
                diff("/targetConnectionIds", item.targetConnectionIds, [target_id]),
            )
            if f
        ]
        have = item.transformations[0] if item.transformations else None
        have_params = (have or {}).get("params") or {}
        same_mapping = (
            have is not None
            and have_params.get("mappingId") == mapping_id
            and mapping_version is not None
            and str(have_params.get("mappingVersion")) == str(version)
        )
        if not same_mapping:
            after = dict(transformation)
            if mapping_version is None:
                after = {
                    "name": "Mapping",
                    "params": {"mappingId": mapping_id, "mappingVersion": "(next)"},
                }
            fields.append(
                FieldChange("/transformations/0", "replace" if have else "add", have, after)
            )
        if flow.schedule:
            schedule = item.scheduleParams or {}
            for part, want in flow.schedule.items():
                got = schedule.get(part)
                if str(got) != str(want):
                    fields.append(
                        FieldChange(
                            f"/scheduleParams/{part}",
                            "replace" if got is not None else "add",
                            got,
                            want,
                        )
                    )
        state = FieldChange("/state", "replace", item.state, flow.state)
        state_drift = (item.state or "").lower() != flow.state
        shown = [*fields, state] if state_drift else fields
        action = Action.UPDATE if shown else Action.NOOP
        note = "state via /flows/{id}/action" if state_drift else None
        self._add(Change(key, "flow", name, action, item.id, shown, note))
        self._record(rkey, "flow", item.id)
        if not self.act:
            return
        if fields:
            if mapping_version is None:
                raise SyncError(f"{key}: the mapping set's new version is unknown")
            self._update_flow_service(collection, rkey, name, item, fields)
        if state_drift:
            if flow.state == "enabled":
                self.client.flows.enable_flow(item.id)
            else:
                self.client.flows.disable_flow(item.id)


def plan(client: PlatformClient, desired: DesiredState, history: History | None) -> Plan:
    """What `apply` would do, with no write anywhere.

    Raises:
        SyncError: the desired state needs a person (a changed auth type, dataset schema or
            flow spec).
        aep.errors.AEPError: the Platform failed.
    """
    return Reconciler(client, desired, history, act=False).run()
