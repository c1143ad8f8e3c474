"""Batch dataflow runs: schedules, run objects, and turning the run engine's output into a run,
a Catalog batch and row errors.

Work waits in the store's `pending` table (kinds `schedule` and `run`) so that the process that
holds the worker lock runs it, whichever process accepted it. The run engine itself
(`emulator.runner.execute_run`, interfaces.md §2) is imported only when a run executes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from emulator.config import EmulatorConfig
from emulator.context import Tenant
from emulator.flowservice.common import sandbox_id
from emulator.ids import etag, now_ms, uuid_id
from emulator.lake import write_batch
from emulator.specs import FLOW_SPECS
from emulator.store import Pending, Scope, Store, Tx

if TYPE_CHECKING:  # the run engine is imported only when a run executes
    from emulator.runner import RunOutput

__all__ = [
    "FAIL_RUN",
    "execute",
    "mapping_schema_id",
    "new_run",
    "schedule_flow",
]

log = logging.getLogger("emulator.dataflow")

FAIL_RUN = "failRun"
"""Kind of admin-armed resource: the next run of a flow fails with the given message."""

_PERIOD_S = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def mapping_schema_id(mapping: dict[str, Any]) -> str | None:
    """The XDM schema $id a mapping set targets, in either mapping format."""
    ref = ((mapping.get("outputSchema") or {}).get("schemaRef") or {}).get("id")
    return ref or mapping.get("xdmSchema")


def _interval_ms(flow: dict[str, Any], config: EmulatorConfig) -> int | None:
    params = flow.get("scheduleParams") or {}
    frequency = params.get("frequency", "once")
    if frequency == "once":
        return None
    period = _PERIOD_S[frequency] * int(params.get("interval", 1)) * 1000
    return max(1, int(period / config.clock_scale))


def schedule_flow(tx: Tx, scope: Scope, flow: dict[str, Any], config: EmulatorConfig) -> None:
    """Queue the first scheduled run of a batch flow (once: right away)."""
    params = flow.get("scheduleParams") or {}
    start_ms = int(params.get("startTime", 0) or 0) * 1000
    now = now_ms()
    if params.get("frequency", "once") == "once" or start_ms <= now:
        due = now
    else:
        due = now + int((start_ms - now) / config.clock_scale)
    tx.add_pending("schedule", due, scope, {"flowId": flow["id"]})


def new_run(
    tx: Tx,
    scope: Scope,
    flow: dict[str, Any],
    params: dict[str, Any] | None,
    client_id: str = "aep-emulator",
) -> dict[str, Any]:
    """Store a fresh run of a flow in status `scheduled` and return it."""
    now = now_ms()
    tag = etag()
    t = Tenant(scope[0], scope[1], client_id)
    run = {
        "id": uuid_id(),
        "flowId": flow["id"],
        "flowSpec": flow["flowSpec"],
        "providerRefId": flow.get("providerRefId"),
        "etag": tag,
        "version": tag,
        "createdAt": now,
        "updatedAt": now,
        "createdBy": f"{client_id}@AdobeID",
        "updatedBy": f"{client_id}@AdobeID",
        "createdClient": client_id,
        "updatedClient": client_id,
        "sandboxId": sandbox_id(t),
        "sandboxName": scope[1],
        "imsOrgId": scope[0],
        "params": params
        or {"startTime": now // 1000, "windowStartTime": 0, "windowEndTime": now // 1000},
        "metrics": {
            "durationSummary": {"startedAtUTC": now},
            "statusSummary": {"status": "scheduled", "errors": [], "extensions": {}},
        },
        "activities": [],
    }
    tx.put("runs", scope, run["id"], run)
    return run


def _target_schema(tx: Tx, scope: Scope, dataset: dict[str, Any] | None) -> dict[str, Any] | None:
    if dataset is None:
        return None
    schema_id = (dataset.get("schemaRef") or {}).get("id")
    for schema in tx.items("schemas", scope):
        if schema_id in (schema.get("$id"), schema.get("meta:altId")):
            return schema
    return None


def _inputs(tx: Tx, scope: Scope, flow: dict[str, Any]) -> dict[str, Any]:
    source = tx.get("sourceConnections", scope, flow["sourceConnectionIds"][0]) or {}
    target = tx.get("targetConnections", scope, flow["targetConnectionIds"][0]) or {}
    base_id = source.get("baseConnectionId")
    base = tx.get("connections", scope, base_id) if base_id else None
    mapping = None
    for tr in flow.get("transformations") or []:
        mapping = tx.get("mappingSets", scope, str(tr.get("params", {}).get("mappingId")))
    dataset_id = str((target.get("params") or {}).get("dataSetId", ""))
    dataset = tx.get("dataSets", scope, dataset_id)
    watermark = tx.get("watermarks", scope, flow["id"])
    return {
        "source": source,
        "target": target,
        "base": base,
        "mapping": mapping,
        "dataset_id": dataset_id,
        "schema": _target_schema(tx, scope, dataset),
        "since_ms": watermark["ms"] if watermark else None,
    }


def _run_engine(
    flow: dict[str, Any], spec_name: str, inputs: dict[str, Any], config: EmulatorConfig
) -> RunOutput:
    from emulator.runner import RunInput, execute_run  # the engine EMU-RUNNER provides

    return execute_run(
        RunInput(
            flow=flow,
            flow_spec_name=spec_name,
            base_connection=inputs["base"],
            source_connection=inputs["source"],
            target_connection=inputs["target"],
            mapping_set=inputs["mapping"],
            target_schema=inputs["schema"],
            since_ms=inputs["since_ms"],
            known_hosts=config.known_hosts,
            stripe_fixtures=config.stripe_fixtures,
        )
    )


def execute(store: Store, work: Pending, config: EmulatorConfig) -> None:
    """Run one due `schedule` or `run` item: execute the flow and record run, batch, errors."""
    scope = work.scope
    flow_id = work.payload["flowId"]
    with store.tx() as tx:
        flow = tx.get("flows", scope, flow_id)
        if flow is None:
            return
        interval = _interval_ms(flow, config)
        if work.kind == "schedule" and interval is not None:
            tx.add_pending("schedule", now_ms() + interval, scope, {"flowId": flow_id})
        if work.kind == "schedule" and flow.get("state") != "enabled":
            return
        run = tx.get("runs", scope, work.payload["runId"]) if "runId" in work.payload else None
        if run is None:
            run = new_run(tx, scope, flow, None)
        run["metrics"]["statusSummary"]["status"] = "inProgress"
        tx.put("runs", scope, run["id"], run)
        inputs = _inputs(tx, scope, flow)
        forced = tx.get(FAIL_RUN, scope, flow_id)
        if forced is not None:
            tx.delete(FAIL_RUN, scope, flow_id)
    spec_name = FLOW_SPECS[flow["flowSpec"]["id"]].name
    started = now_ms()
    if forced is not None:
        output = _failed_output(str(forced.get("message", "Run failed (injected).")))
    else:
        try:
            output = _run_engine(flow, spec_name, inputs, config)
        except Exception as exc:  # the engine's bugs must not kill the worker
            log.exception("run engine raised for flow %s", flow_id)
            output = _failed_output(f"Run engine error: {type(exc).__name__}: {exc}")
    with store.tx() as tx:
        _record(tx, scope, flow, run, inputs, output, started)


def _failed_output(message: str) -> RunOutput:
    from emulator.runner import RunOutput as _RunOutput

    return _RunOutput(failure=message)


def _over_threshold(flow: dict[str, Any], failed: int, total: int) -> str | None:
    """The failure message when failed records exceed `options.partialIngestionPercent`.

    Without that option every batch is ingested partially (an emulator simplification, see
    docs/emulator.md); with it, a run whose failed share is above the threshold fails and
    nothing of it lands, as the option's spec text says.
    """
    percent = (flow.get("options") or {}).get("partialIngestionPercent")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool) or not total:
        return None
    share = failed * 100 / total
    if share <= percent:
        return None
    return (
        f"Partial ingestion threshold exceeded: {failed} of {total} records failed "
        f"({share:.1f}% > {percent}%); the batch was not ingested."
    )


def _record(
    tx: Tx,
    scope: Scope,
    flow: dict[str, Any],
    run: dict[str, Any],
    inputs: dict[str, Any],
    output: RunOutput,
    started: int,
) -> None:
    errors = [
        {"file": e.file, "line": e.line, "code": e.code, "message": e.message, "raw": e.raw}
        for e in output.errors
    ]
    source_failed = output.failure is not None
    threshold = None if source_failed else _over_threshold(flow, len(errors), output.input_count)
    failure = output.failure or threshold
    source_format = str((inputs["source"].get("data") or {}).get("format", "json")).lower()
    # Catalog's inputFormat.format enum: csv, parquet, json, avro
    fmt = {"delimited": "csv"}.get(source_format, source_format)
    batch = write_batch(
        tx,
        scope,
        inputs["dataset_id"],
        list(output.records),
        errors,
        input_format=fmt,
        flow_id=flow["id"],
        run_id=run["id"],
        failure=failure,
    )
    completed = now_ms()
    failed = failure is not None or (bool(errors) and not output.records)
    status = "failed" if failed else "success"
    record_summary = {
        "inputRecordCount": output.input_count,
        "outputRecordCount": 0 if failure else len(output.records),
        "failedRecordCount": len(errors),
    }
    status_errors = []
    if source_failed:
        status_errors = [{"code": "CONNECTOR-1001-500", "message": output.failure}]
    elif threshold:
        status_errors = [{"code": "INGEST-1212-400", "message": threshold}]
    row_error_url = f"/data/foundation/export/batches/{batch['id']}/meta?path=row_errors"
    extensions: dict[str, Any] = {}
    if errors:
        extensions = {
            "errors": [{"code": e["code"], "message": e["message"]} for e in errors[:5]],
            "manifest": {"failedRecords": row_error_url},
        }
    duration = {"startedAtUTC": started, "completedAtUTC": completed}
    files = {
        "inputFileCount": len(output.files),
        "outputFileCount": 1 if output.records else 0,
        "skippedFileCount": 0,
        "failedFileCount": 1 if output.failure else 0,
    }
    run["metrics"] = {
        "durationSummary": duration,
        "sizeSummary": {"inputBytes": batch["size"], "outputBytes": batch["size"]},
        "recordSummary": record_summary,
        "fileSummary": files,
        "statusSummary": {
            "status": status,
            "errors": status_errors,
            "extensions": extensions,
            "activityRefs": ["copyActivity", "promotionActivity"],
        },
    }
    run["activities"] = [
        {
            "id": "copyActivity",
            "name": "Copy Activity",
            "updatedAtUTC": completed,
            "durationSummary": duration,
            "recordSummary": {
                "inputRecordCount": output.input_count,
                "outputRecordCount": output.input_count,
                "failedRecordCount": 0,
            },
            "fileSummary": files,
            "statusSummary": {
                "status": "failed" if source_failed else "success",
                "errors": status_errors if source_failed else [],
            },
        },
        {
            "id": "promotionActivity",
            "name": "Promotion Activity",
            "updatedAtUTC": completed,
            "durationSummary": duration,
            "recordSummary": record_summary,
            "statusSummary": {"status": status, "errors": status_errors, "extensions": extensions},
            "targetInfo": [
                {
                    "type": "TargetConnection",
                    "id": inputs["target"].get("id"),
                    "reference": {"type": "Batch", "ids": [batch["id"]]},
                }
            ],
        },
    ]
    tag = etag()
    run["etag"] = tag
    run["version"] = tag
    run["updatedAt"] = completed
    tx.put("runs", scope, run["id"], run)
    if output.watermark_ms is not None:
        tx.put("watermarks", scope, flow["id"], {"ms": output.watermark_ms})
    current = tx.get("flows", scope, flow["id"])
    if current is not None:
        current["lastRunDetails"] = {
            "id": run["id"],
            "state": status,
            "startedAtUTC": started,
            "completedAtUTC": completed,
        }
        tx.put("flows", scope, flow["id"], current)
