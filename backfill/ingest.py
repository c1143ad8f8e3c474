"""Ingest: the SFTP dataflow that makes AEP read the shipped files, and its runs.

Per export kind, the chain of Adobe's SFTP source tutorial, each resource created only when it
cannot be found by its deterministic name (after an ambiguous failure too, see `aep.lookup`):
tenant schema -> dataset -> SFTP base connection (AEP's own credential, as AEP reaches the
landing zone) -> source connection (the kind's folder, delimited; JSON lines for bills with
their line items nested) -> data lake target connection -> mapping set -> flow
(CloudStorageToAEP, frequency `once`). A `once` flow runs when created; files shipped later are
picked up by an ad-hoc run (`POST /runs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aep import deviations
from aep.client import PlatformClient
from aep.flows import Run, patch
from aep.names import description_tag, resource_name
from backfill.targets import Target
from config.keys import private_key_content

__all__ = [
    "CLOUD_STORAGE_FLOW_SPEC",
    "DATA_LAKE_SPEC",
    "SFTP_SPEC",
    "Dataflow",
    "IngestError",
    "PullSource",
    "auth_fingerprint",
    "ensure_dataflow",
    "run_dataflow",
    "wait_for_run",
]

logger = logging.getLogger("backfill.ingest")

SFTP_SPEC = "b7bf2577-4520-42c9-bae9-cad01560f7bc"
DATA_LAKE_SPEC = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
CLOUD_STORAGE_FLOW_SPEC = "9753525b-82c7-4dce-8a9b-5ccfce2b9876"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"
TERMINAL = {"success", "failed", "partialsuccess", "cancelled"}


class IngestError(Exception):
    """The dataflow could not be made to run, or its run did not finish in time."""


@dataclass(frozen=True)
class PullSource:
    """The landing zone as AEP reaches it, with AEP's own credential (password or RSA key)."""

    host: str
    port: int
    username: str
    folder_path: str
    password: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def auth(self) -> dict[str, Any]:
        """The base connection's `auth` object (Adobe's SFTP source, aep-api.md §3.5)."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "userName": self.username,  # the tutorials' spelling (the tables say `username`)
            "folderPath": self.folder_path,
        }
        if self.private_key_pem:
            params["privateKeyContent"] = private_key_content(self.private_key_pem)
            if self.passphrase:
                params["passPhrase"] = self.passphrase
            return {"specName": "SSH PublicKey Authentication for sftp", "params": params}
        if not self.password:
            raise IngestError("the SFTP pull credential needs a password or a private key")
        params["password"] = self.password
        return {"specName": "Basic Authentication for sftp", "params": params}


@dataclass
class Dataflow:
    """The ids of one kind's dataflow chain, and which of them this call created."""

    kind: str
    schema_id: str
    dataset_id: str
    base_connection_id: str
    source_connection_id: str
    target_connection_id: str
    mapping_set_id: str
    flow_id: str
    created: list[str] = field(default_factory=list)

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def ensure_dataflow(
    client: PlatformClient,
    *,
    prefix: str,
    target: Target,
    pull: PullSource,
    folder: str,
    compression: str | None = None,
    recorded_mapping_id: str | None = None,
    credential_changed: bool = False,
    file_format: str = "delimited",
) -> Dataflow:
    """Make the kind's SFTP dataflow exist (find each resource by name, create what is missing).

    Args:
        folder: the remote folder (as AEP sees it) the kind's files are shipped into.
        compression: `gzip` when the files were compressed on the way; such files get a
            source connection, target connection and flow of their own (`...<kind>.gzip`),
            as a source connection reads one compression and a folder may hold both.
        recorded_mapping_id: the mapping set id a previous run recorded (mapping sets have no
            name; the description tag is the fallback).
        credential_changed: the pull credential differs from the one last sent (see
            `auth_fingerprint`): an existing base connection gets it, as AEP masks the
            credential in a GET and cannot show the difference.
        file_format: `delimited` (`*.csv`) or `json` (JSON lines, `*.jsonl`: bills with
            their line items nested, see `backfill.nest`); JSON files get a source
            connection, target connection, mapping set and flow of their own
            (`...<kind>.jsonl`), so a kind's CSV flow keeps reading its CSV files.
    """
    kind = target.kind
    created: list[str] = []
    # one source connection reads one compression: gzip files get their own chain from here
    json_lines = file_format == "json"
    suffix = (".jsonl" if json_lines else "") + (
        f".{compression}" if compression and compression != "none" else ""
    )

    def note(what: str, result: Any) -> str:
        if result.created:
            created.append(what)
        return str(result.id)

    tenant = client.schemas.tenant_id()
    schema_id = note(
        "schema",
        client.schemas.ensure_schema(target.schema_body(resource_name(prefix, kind), tenant)),
    )
    dataset_id = note(
        "dataset",
        client.catalog.ensure_dataset(
            resource_name(prefix, kind),
            {
                "schemaRef": {"id": schema_id, "contentType": XED_FULL},
                "fileDescription": {
                    "persisted": True,
                    "containerFormat": "parquet",
                    "format": "parquet",
                },
            },
        ),
    )
    auth = pull.auth()
    base = client.flows.connections.ensure(
        resource_name(prefix, "sftp"),
        {"connectionSpec": {"id": SFTP_SPEC, "version": "1.0"}, "auth": auth},
    )
    base_id = note("base connection", base)
    if not base.created and _update_drifted_auth(
        client, base_id, auth, credential_changed=credential_changed
    ):
        created.append("base connection (auth updated)")
    properties: dict[str, Any] = {"encoding": "UTF-8"}
    if not json_lines:
        properties = {"columnDelimiter": ",", **properties}
    if compression and compression != "none":
        properties["compressionType"] = compression
    pattern = ("*.jsonl" if json_lines else "*.csv") + (".gz" if compression == "gzip" else "")
    source_body: dict[str, Any] = {
        "baseConnectionId": base_id,
        "connectionSpec": {"id": SFTP_SPEC, "version": "1.0"},
        "data": {"format": "json" if json_lines else "delimited", "properties": properties},
        "params": {"path": f"{folder.rstrip('/')}/{pattern}", "type": "folder"},
    }
    source = client.flows.source_connections.ensure(
        resource_name(prefix, f"sftp.{kind}{suffix}"), source_body
    )
    source_id = note("source connection", source)
    if not source.created and _update_drifted_source(client, source_id, source_body):
        created.append("source connection (path updated)")
    target_id = note(
        "target connection",
        client.flows.target_connections.ensure(
            resource_name(prefix, f"lake.{kind}{suffix}"),
            {
                "connectionSpec": {"id": DATA_LAKE_SPEC, "version": "1.0"},
                "data": {"format": "parquet_xdm", "schema": {"id": schema_id, "version": XED_FULL}},
                "params": {"dataSetId": dataset_id},
            },
        ),
    )
    mapping_id = note(
        "mapping set",
        client.mappings.ensure_mapping_set(
            # nested records map otherwise: their own mapping set
            description_tag(prefix, f"{kind}.jsonl" if json_lines else kind),
            target.mapping_body(schema_id, tenant),
            recorded_id=recorded_mapping_id,
        ),
    )
    flow_id = note(
        "flow",
        client.flows.flows.ensure(
            resource_name(prefix, f"flow.{kind}{suffix}"),
            {
                "flowSpec": {"id": CLOUD_STORAGE_FLOW_SPEC, "version": "1.0"},
                "sourceConnectionIds": [source_id],
                "targetConnectionIds": [target_id],
                "transformations": [
                    {
                        "name": "Mapping",
                        "params": {
                            "mappingId": mapping_id,
                            "mappingVersion": deviations.mapping_version(0),
                        },
                    }
                ],
                "scheduleParams": {
                    "startTime": deviations.schedule_start_time(int(time.time())),
                    "frequency": "once",
                },
            },
        ),
    )
    flow = Dataflow(
        kind=kind,
        schema_id=schema_id,
        dataset_id=dataset_id,
        base_connection_id=base_id,
        source_connection_id=source_id,
        target_connection_id=target_id,
        mapping_set_id=mapping_id,
        flow_id=flow_id,
        created=created,
    )
    logger.info(
        "dataflow for %s: flow %s (created: %s)", kind, flow_id, ", ".join(created) or "none"
    )
    return flow


_COMPARED_PARAMS = ("host", "port", "userName", "folderPath")
"""Auth params AEP shows back; secrets are masked in a GET, so they cannot be compared."""


def auth_fingerprint(auth: dict[str, Any]) -> str:
    """sha256 of a base connection's `auth`, secrets included: kept locally to tell whether
    the credential AEP holds is still the configured one (a GET shows it masked)."""
    return hashlib.sha256(json.dumps(auth, sort_keys=True).encode()).hexdigest()


def _update_drifted_auth(
    client: PlatformClient,
    connection_id: str,
    auth: dict[str, Any],
    *,
    credential_changed: bool = False,
) -> bool:
    """Bring an existing SFTP base connection's auth params up to date: host, port, user and
    folder as AEP shows them, and the credential when the caller knows it changed.

    Adobe documents `PATCH /connections/{id}` replacing `/auth/params` with If-Match; the auth
    type (`specName`) cannot change, which needs a new base connection.

    Returns:
        True when the connection was patched.

    Raises:
        IngestError: the auth type changed.
    """
    current = client.flows.connections.get(connection_id)
    current_auth = current.auth or {}
    now = current_auth.get("params") or {}
    if current_auth.get("specName") not in (None, auth["specName"]):
        raise IngestError(
            f"base connection {connection_id} uses {current_auth.get('specName')!r}, the "
            f"configuration asks for {auth['specName']!r}: AEP cannot change the auth type of a "
            "connection; delete it (and its flows) or rename flows.prefix"
        )
    drifted = [k for k in _COMPARED_PARAMS if str(now.get(k)) != str(auth["params"].get(k))]
    if credential_changed:
        drifted.append("credential")
    if not drifted or current.etag is None:
        return False
    logger.info("base connection %s: updating %s", connection_id, ", ".join(drifted))
    client.flows.connections.patch(
        connection_id, current.etag, [patch("replace", "/auth/params", auth["params"])]
    )
    return True


def _update_drifted_source(
    client: PlatformClient, connection_id: str, body: dict[str, Any]
) -> bool:
    """Bring an existing source connection's path and file properties up to date.

    The landing folder follows `sftp.remote_root` / `aep_pull.folder_path`: when either
    changes, a source connection still reading the old folder would fail every run (outside
    the base connection's folderPath) or read nothing.

    Returns:
        True when the connection was patched.
    """
    current = client.flows.source_connections.get(connection_id)
    ops = []
    if (current.params or {}).get("path") != body["params"]["path"]:
        ops.append(patch("replace", "/params/path", body["params"]["path"]))
    if (current.data or {}).get("properties") != body["data"]["properties"]:
        ops.append(patch("replace", "/data/properties", body["data"]["properties"]))
    if not ops or current.etag is None:
        return False
    logger.info("source connection %s: updating %s", connection_id, [o["path"] for o in ops])
    client.flows.source_connections.patch(connection_id, current.etag, ops)
    return True


def _finished(run: Run) -> bool:
    return (run.status or "").lower() in TERMINAL


def run_dataflow(
    client: PlatformClient,
    flow: Dataflow,
    *,
    known_run_ids: set[str],
    timeout_s: float,
    poll_s: float,
    window_start_s: int = 0,
) -> Run:
    """Wait for the flow's run over the files shipped now, starting one if needed.

    A flow created by this call runs on its own (`once`); an existing flow gets an ad-hoc run.
    `known_run_ids` are runs already reconciled: they are never taken for the new one.

    Args:
        window_start_s: epoch seconds from which the files to read were shipped; an ad-hoc
            run of a file source needs its window (`windowStartTime`, `windowEndTime`) as well
            as its `startTime` (aep-api.md §2, `POST /runs`), and a run created before it is
            never taken for these files.

    Raises:
        IngestError: no new run finished within `timeout_s`.
    """

    def candidates() -> list[Run]:
        # a run created before the files were shipped cannot have read them: one another
        # state directory (another machine, a lost ledger) started is never taken for them
        since_ms = window_start_s * 1000
        return [
            r
            for r in client.flows.runs(flow.flow_id)
            if r.id not in known_run_ids and (r.createdAt is None or r.createdAt >= since_ms)
        ]

    unseen = candidates()
    if "flow" not in flow.created and not unseen:
        now = int(time.time())
        started = client.flows.create_run(
            flow.flow_id,
            {"startTime": now, "windowStartTime": min(window_start_s, now), "windowEndTime": now},
        )
        logger.info("started run %s of flow %s", started.id, flow.flow_id)
    elif unseen:
        # a run nobody recorded: the one a crashed invocation started, or the flow's first
        logger.info("flow %s: taking up run %s", flow.flow_id, unseen[-1].id)
    deadline = time.monotonic() + timeout_s
    while True:
        fresh = candidates()
        done = [r for r in fresh if _finished(r)]
        if done:
            return done[-1]  # runs are listed newest first: settle the oldest unseen first
        if time.monotonic() > deadline:
            states = ", ".join(f"{r.id}: {r.status}" for r in fresh) or "no run yet"
            raise IngestError(
                f"flow {flow.flow_id} ({flow.kind}): no run finished within {timeout_s:.0f}s "
                f"({states}); re-run `aep-migrate run` to keep waiting"
            )
        time.sleep(poll_s)


def wait_for_run(client: PlatformClient, run_id: str, *, timeout_s: float, poll_s: float) -> Run:
    """Wait until a known run has finished.

    Raises:
        IngestError: it did not finish within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.flows.get_run(run_id)
        if _finished(run):
            return run
        if time.monotonic() > deadline:
            raise IngestError(
                f"run {run_id} still {run.status} after {timeout_s:.0f}s; "
                "re-run `aep-migrate run` to keep waiting"
            )
        time.sleep(poll_s)
