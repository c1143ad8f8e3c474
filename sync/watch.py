"""Watch: each desired flow's state, its latest runs and their failures, into the history.

For every flow of the desired state: find it (recorded id, else name), compare its state with
the desired one, read its newest runs (`GET /runs?property=flowId==<id>`), record each run and
its record counts in the history, and raise an alert (logged at WARNING and kept in the
history, once per occurrence) for a missing flow, a flow in the wrong state, and a failed run.
Reads only: the watch never changes the Platform (the next apply does).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aep import errors
from aep.client import PlatformClient
from aep.flows import Flow, Run
from aep.names import resource_name
from sync.desired import DesiredState
from sync.history import History, RunRow

__all__ = ["FlowWatch", "WatchReport", "find_flow", "watch"]

logger = logging.getLogger("sync.watch")

RUNS_PER_LOOK = 10
"""Newest runs read per flow and look."""
_FAILED = {"failed", "cancelled"}


@dataclass
class FlowWatch:
    """What one look at one flow found."""

    key: str
    flow_id: str | None
    state: str | None
    inlet_url: str | None = None
    runs_seen: int = 0
    new_runs: int = 0
    last_run_status: str | None = None
    alerts: list[str] = field(default_factory=list)


@dataclass
class WatchReport:
    """One look at every desired flow."""

    flows: list[FlowWatch] = field(default_factory=list)

    @property
    def new_alerts(self) -> list[str]:
        """The alerts raised by this look."""
        return [a for f in self.flows for a in f.alerts]

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"flows": [asdict(f) for f in self.flows], "new_alerts": self.new_alerts}

    def lines(self) -> list[str]:
        """One line per flow, then its new alerts."""
        out = []
        for f in self.flows:
            out.append(
                f"{f.key:<24} {f.state or 'missing':<10} runs {f.runs_seen} "
                f"(new {f.new_runs}, last {f.last_run_status or '-'})"
                + (f"  inlet {f.inlet_url}" if f.inlet_url else "")
            )
            out.extend(f"  ! {a}" for a in f.alerts)
        return out


def find_flow(
    client: PlatformClient, desired: DesiredState, history: History | None, key: str
) -> Flow | None:
    """A desired flow as it exists: by its recorded id, else by its deterministic name."""
    recorded = history.recorded_id(f"{key}.flow") if history is not None else None
    if recorded:
        try:
            return client.flows.flows.get(recorded)
        except errors.NotFoundError:
            pass
    return client.flows.flows.find_by_name(resource_name(desired.prefix, f"{key}.flow"))


def _run_message(run: Run) -> str:
    text = "; ".join(run.error_messages)  # the run's own errors, then its activities'
    counts = run.record_summary
    return (
        f"run {run.id} {run.status}: {text or 'no error detail'} "
        f"(input {counts.inputRecordCount}, output {counts.outputRecordCount}, "
        f"failed {counts.failedRecordCount})"
    )


def watch(client: PlatformClient, desired: DesiredState, history: History) -> WatchReport:
    """Look once at every desired flow; record runs and alerts in `history`."""
    report = WatchReport()
    last_apply = history.applies(1)
    apply_ref = str(last_apply[0].id) if last_apply else "0"
    for key, decl in desired.flows.items():
        flow = find_flow(client, desired, history, key)
        if flow is None:
            entry = FlowWatch(key, None, None)
            message = f"{key}: flow not found; `aep-sync apply` creates it"
            if history.alert(key, "missing", message, ref=f"{key}@{apply_ref}"):
                entry.alerts.append(message)
            report.flows.append(entry)
            continue
        entry = FlowWatch(key, flow.id, flow.state, inlet_url=flow.inlet_url)
        if (flow.state or "").lower() != decl.state:
            message = f"{key}: flow {flow.id} is {flow.state}, configured {decl.state}"
            if history.alert(key, "state", message, ref=f"{flow.id}@{flow.etag}"):
                entry.alerts.append(message)
        for run in itertools.islice(client.flows.runs(flow.id), RUNS_PER_LOOK):
            counts = run.record_summary
            entry.runs_seen += 1
            if entry.last_run_status is None:
                entry.last_run_status = run.status
            new = history.record_run(
                RunRow(
                    run_id=run.id,
                    flow_key=key,
                    flow_id=flow.id,
                    status=run.status,
                    input_records=counts.inputRecordCount,
                    output_records=counts.outputRecordCount,
                    failed_records=counts.failedRecordCount,
                    created_at=run.createdAt,
                    seen_at=time.time(),
                )
            )
            entry.new_runs += int(new)
            if (run.status or "").lower() in _FAILED:
                message = f"{key}: {_run_message(run)}"
                if history.alert(key, "run-failed", message, ref=run.id):
                    entry.alerts.append(message)
        for message in entry.alerts:
            logger.warning("%s", message)
        report.flows.append(entry)
    return report
