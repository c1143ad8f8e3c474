"""Reconcile: do the counts add up from the CSV export to the records AEP wrote?

Per file, rows read = valid + rejected + excluded is the validator's to hold (it raises
`InvariantError` otherwise, so no file gets this far without it). Here, each checked and
reported with both sides:
- per kind and run: rows shipped = the run's `inputRecordCount` (for Capillary bills shipped
  with their line items nested, rows shipped = bills: the line-item files ride along with 0), and
  input = `outputRecordCount` + `failedRecordCount`;
- per run: the Catalog batches it promoted agree with it: sum of `recordCount` = output and
  sum of `failedRecordCount` = failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aep.catalog import Batch
from aep.flows import Run

__all__ = ["RunReconciliation", "reconcile_run"]


@dataclass
class RunReconciliation:
    """The counts of one kind's run, and every disagreement found."""

    kind: str
    flow_id: str
    run_id: str
    status: str
    rows_shipped: int
    input: int | None
    output: int | None
    failed: int | None
    batches: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every count agrees and the run succeeded."""
        return not self.problems

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": self.ok}


def reconcile_run(
    kind: str, flow_id: str, run: Run, batches: list[Batch], *, rows_shipped: int
) -> RunReconciliation:
    """Compare what was shipped with what the run and its batches say."""
    summary = run.record_summary
    rec = RunReconciliation(
        kind=kind,
        flow_id=flow_id,
        run_id=run.id,
        status=(run.status or "unknown"),
        rows_shipped=rows_shipped,
        input=summary.inputRecordCount,
        output=summary.outputRecordCount,
        failed=summary.failedRecordCount,
        batches=[
            {
                "id": b.id,
                "status": b.status,
                "recordCount": b.recordCount,
                "failedRecordCount": b.failedRecordCount,
            }
            for b in batches
        ],
    )
    if rec.status.lower() != "success":
        reasons = "; ".join(run.error_messages) or "no reason given"
        rec.problems.append(f"run {run.id} ended {rec.status}: {reasons}")
        if not rec.input and not rec.output and not any(b.recordCount for b in batches):
            return rec  # it read nothing: its counts say nothing about the files
    if rec.input is None or rec.output is None or rec.failed is None:
        rec.problems.append(f"run {run.id} has no complete recordSummary")
        return rec
    if rec.input != rows_shipped:
        rec.problems.append(f"rows shipped {rows_shipped} != run inputRecordCount {rec.input}")
    if rec.output + rec.failed != rec.input:
        rec.problems.append(f"run output {rec.output} + failed {rec.failed} != input {rec.input}")
    batch_ok = sum(b.recordCount or 0 for b in batches)
    batch_failed = sum(b.failedRecordCount or 0 for b in batches)
    if not batches and rec.output:
        rec.problems.append(f"run {run.id} wrote {rec.output} records but names no batch")
    elif batches:
        if batch_ok != rec.output:
            rec.problems.append(f"batches' recordCount {batch_ok} != run output {rec.output}")
        if batch_failed != rec.failed:
            rec.problems.append(
                f"batches' failedRecordCount {batch_failed} != run failed {rec.failed}"
            )
    return rec
