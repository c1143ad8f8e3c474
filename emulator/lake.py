"""The data lake: Catalog batches with their records and row errors, and landing into Profile.

A batch is written in one go (records that landed + row errors), as both dataflow runs and the
streaming landing produce them. Its data lives beside it under kind `batchData`, which Data
Access serves.
"""

from __future__ import annotations

from typing import Any

from emulator import profiles
from emulator.ids import now_ms, ulid
from emulator.store import Scope, Tx

__all__ = ["BATCH_DATA", "RowErrorRecord", "write_batch"]

BATCH_DATA = "batchData"

RowErrorRecord = dict[str, Any]
"""{"file", "line", "code", "message", "raw"} of one record that did not land."""


def write_batch(
    tx: Tx,
    scope: Scope,
    dataset_id: str,
    records: list[dict[str, Any]],
    errors: list[RowErrorRecord],
    *,
    input_format: str,
    flow_id: str | None = None,
    run_id: str | None = None,
    failure: str | None = None,
) -> dict[str, Any]:
    """Store a finished batch in a dataset and land its records in Profile when enabled.

    Args:
        tx: the open transaction.
        scope: (org, sandbox).
        dataset_id: the target dataset.
        records: the XDM records that landed.
        errors: one row error per record that did not.
        input_format: Catalog's inputFormat.format: `csv`, `json`, `parquet` or `avro`.
        flow_id: the flow that produced it, if any.
        run_id: the run that produced it, if any.
        failure: a whole-batch failure message (status failed, nothing lands).

    Returns:
        The Catalog batch as stored.
    """
    now = now_ms()
    batch_id = ulid()
    status = "failed" if failure or (errors and not records) else "success"
    landed = [] if failure else records
    batch: dict[str, Any] = {
        "id": batch_id,
        "imsOrg": scope[0],
        "status": status,
        "created": now,
        "updated": now,
        "started": now,
        "completed": now,
        "createdUser": "aep-emulator",
        "updatedUser": "aep-emulator",
        "recordCount": len(landed),
        "failedRecordCount": len(errors),
        "size": sum(len(str(r)) for r in landed),
        "relatedObjects": [{"type": "dataSet", "id": dataset_id}],
        "inputFormat": {"format": input_format},
        "version": "1.0.0",
        "tags": {},
        "errors": (
            [{"code": "RUN-FAILED", "description": failure, "rows": []}]
            if failure
            else (
                [
                    {
                        "code": "ROW-ERRORS",
                        "description": f"{len(errors)} record(s) failed",
                        "rows": [str(e["line"]) for e in errors if e.get("line")],
                    }
                ]
                if errors
                else []
            )
        ),
        "metrics": {
            "inputRecordCount": len(landed) + len(errors),
            "outputRecordCount": len(landed),
            "failedRecordCount": len(errors),
        },
    }
    if flow_id:
        batch["tags"]["flowId"] = [flow_id]
    if run_id:
        batch["tags"]["flowRunId"] = [run_id]
    tx.put("batches", scope, batch_id, batch)
    tx.put(
        BATCH_DATA,
        scope,
        batch_id,
        {"records": landed, "errors": errors, "datasetId": dataset_id, "created": now},
    )
    dataset = tx.get("dataSets", scope, dataset_id)
    if dataset is not None:
        dataset["lastBatchId"] = batch_id
        dataset["lastBatchStatus"] = status
        dataset["updated"] = now
        tx.put("dataSets", scope, dataset_id, dataset)
        if landed and profiles.is_profile_enabled(dataset):
            profiles.upsert(tx, scope, dataset, landed)
    return batch
