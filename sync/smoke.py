"""Proof: one test record through a flow's streaming inlet, confirmed where it lands.

`send_smoke` finds the flow (recorded id, else name) and its inlet (`options.inletUrl`), builds
one record with a unique test identity (the flow's `smoke.record` template, else one value per
mapping source), POSTs it to the inlet (with `?syncValidation=true` first when configured, so a
record the schema refuses fails at once with DCS's reasons), then polls until it is confirmed:

- `profile`: the Profile access API finds the test identity (Profile-enabled datasets);
- `transaction` (and profile datasets too): a Catalog batch of the target dataset created since
  the send holds the record (Data Access: the batch's files), or its failed records do (then
  the smoke fails with the reason).

It measures the latency from the inlet's answer to the first confirmation. On failure it writes
a support bundle (the inlet request and its response, request ids, timestamps, the last polls,
and the resource ids), redacted by the client's capture, into `<state_dir>/bundles/`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aep import errors
from aep.capture import SupportBundle
from aep.client import PlatformClient
from sync.desired import DesiredState, FlowDecl
from sync.history import History
from sync.watch import find_flow

__all__ = ["Kind", "SmokeConfigError", "SmokeResult", "build_record", "send_smoke"]

logger = logging.getLogger("sync.smoke")

Kind = Literal["profile", "transaction"]
BUNDLE_POLLS_KEPT = 5
"""Poll exchanges kept in a bundle beside the inlet request."""


class SmokeConfigError(Exception):
    """The smoke cannot be sent: unknown flow, flow not created yet, or no streaming inlet."""


@dataclass
class SmokeResult:
    """What one smoke test did and found."""

    flow_key: str
    kind: Kind
    identity: str
    flow_id: str | None = None
    dataset_id: str | None = None
    inlet_url: str | None = None
    xaction_id: str | None = None
    landed: bool = False
    confirmed_by: list[str] = field(default_factory=list)
    latency_s: float | None = None
    error: str | None = None
    bundle: str | None = None

    def asdict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def lines(self) -> list[str]:
        """What `aep-smoke send` prints."""
        head = f"{self.flow_key}: {self.kind} {self.identity} -> inlet {self.inlet_url}"
        if self.landed:
            via = " and ".join(self.confirmed_by)
            return [head, f"landed in {self.latency_s:.2f}s (confirmed by {via})"]
        out = [head, f"NOT landed: {self.error}"]
        if self.bundle:
            out.append(f"support bundle: {self.bundle}")
        return out


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _set(record: dict[str, Any], path: str, value: Any) -> None:
    parts = path.replace("[0]", "").split(".")
    node = record
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node.setdefault(parts[-1], value)


def build_record(flow: FlowDecl, tenant: str, *, email: str, test_id: str) -> dict[str, Any]:
    """One test record for `flow` with the unique identity `email` / `test_id`.

    The flow's `smoke.record` template with `{email}`, `{id}`, `{now}`, `{now_s}` filled in;
    without one, a value per mapping source chosen by the type of the schema field it maps to.
    """
    template = flow.smoke.record
    if template is not None:
        text = (
            template.replace("{email}", email)
            .replace("{id}", test_id)
            .replace("{now}", _now_iso())
            .replace("{now_s}", str(int(time.time())))
        )
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise SmokeConfigError(f"flows.{flow.key}.smoke.record is not a JSON object")
        return loaded
    record: dict[str, Any] = {}
    types = flow.schema_.fields
    for source, destination in flow.mapping.pairs(tenant):
        field_path = destination.removeprefix(f"_{tenant}.")
        kind = types.get(field_path, "string")
        if "email" in source.lower() or destination.startswith("identityMap"):
            value: Any = email
        elif destination in ("_id",) or source.endswith(".id") or source == "id":
            value = test_id
        elif destination == "timestamp":
            value = _now_iso()
        else:
            value = {"integer": 1, "number": 1.5, "boolean": True, "object": {}}.get(
                kind, f"aep-smoke-{test_id}"
            )
        _set(record, source, value)
    return record


def _dataset_of(client: PlatformClient, flow_target_ids: list[str]) -> str | None:
    for target_id in flow_target_ids:
        target = client.flows.target_connections.get(target_id)
        dataset = (target.params or {}).get("dataSetId")
        if dataset:
            return str(dataset)
    return None


def send_smoke(
    client: PlatformClient,
    desired: DesiredState,
    history: History | None,
    flow_key: str,
    *,
    kind: Kind | None,
    timeout_s: float,
    poll_s: float,
    sync_validation: bool,
    bundles_dir: Path,
) -> SmokeResult:
    """Send one test record through a flow's inlet and wait until it is confirmed.

    Args:
        kind: `profile` or `transaction`; default by the flow's schema class.
        timeout_s: how long to wait for a confirmation.
        poll_s: pause between polls.
        sync_validation: ask DCS to validate the record synchronously.
        bundles_dir: where a failure's support bundle goes.

    Raises:
        SmokeConfigError: unknown flow key, flow not created, or a flow without an inlet.
        aep.errors.AEPError: the Platform failed while looking the flow up.
    """
    decl = desired.flows.get(flow_key)
    if decl is None:
        raise SmokeConfigError(
            f"no flow {flow_key!r} in {desired.source}; configured: {', '.join(desired.flows)}"
        )
    kind = kind or ("profile" if decl.schema_.xdm_class == "profile" else "transaction")
    test_id = uuid.uuid4().hex[:16]
    email = f"aep-smoke+{test_id}@example.com"
    result = SmokeResult(flow_key=flow_key, kind=kind, identity=email)
    flow = find_flow(client, desired, history, flow_key)
    if flow is None:
        raise SmokeConfigError(f"flow {flow_key!r} does not exist yet: run `aep-sync apply`")
    result.flow_id = flow.id
    result.inlet_url = flow.inlet_url
    if not flow.inlet_url:
        raise SmokeConfigError(
            f"flow {flow_key!r} ({flow.id}) has no streaming inlet (options.inletUrl): its flow "
            "spec is a batch one; only streaming flows can be smoke-tested"
        )
    result.dataset_id = _dataset_of(client, flow.targetConnectionIds)
    if kind == "profile" and not decl.dataset.profile:
        raise SmokeConfigError(
            f"flow {flow_key!r}: its dataset is not Profile-enabled; use --transaction"
        )
    record = build_record(decl, client.schemas.tenant_id(), email=email, test_id=test_id)
    namespace = decl.smoke.identity_namespace or "email"
    sent_ms = int(time.time() * 1000) - 1000  # Catalog times are the server's: allow skew
    # exchanges are told apart by identity (the capture ring drops old ones as polls arrive);
    # `earlier` keeps them referenced so no id is reused while this runs
    earlier = client.capture.exchanges()
    before = {id(x) for x in earlier}
    try:
        receipt = client.streaming.send(
            flow.inlet_url, record, sync_validation=sync_validation, flow_id=flow.id
        )
    except errors.AEPError as exc:
        result.error = f"the inlet refused the record: {exc}"
        return _fail(client, result, before, bundles_dir)
    sent_exchanges = [x for x in client.capture.exchanges() if id(x) not in before]
    earlier += sent_exchanges
    before |= {id(x) for x in sent_exchanges}
    result.xaction_id = receipt.xactionId
    started = time.monotonic()
    deadline = started + timeout_s
    checked: set[str] = set()
    in_lake: str | None = None
    while True:
        try:
            if result.dataset_id and not in_lake:
                outcome = _in_new_batches(client, result.dataset_id, test_id, sent_ms, checked)
                if outcome is not None and outcome.startswith("failed"):
                    result.error = f"the record landed as a failed record: {outcome}"
                    return _fail(client, result, before, bundles_dir, sent_exchanges)
                if outcome is not None:
                    in_lake = outcome
            if kind == "profile":
                entity = client.profiles.get_entity(email, namespace)
                if entity is not None:
                    result.confirmed_by.append(f"profile {entity.entityId}")
        except errors.AEPError as exc:
            logger.warning("smoke poll failed (will retry until the deadline): %s", exc)
        if kind == "transaction" and in_lake:
            result.confirmed_by.append(in_lake)
        if result.confirmed_by:
            if in_lake and in_lake not in result.confirmed_by:
                result.confirmed_by.append(in_lake)
            result.landed = True
            result.latency_s = round(time.monotonic() - started, 3)
            return result
        if time.monotonic() >= deadline:
            result.error = (
                f"not confirmed within {timeout_s:g}s (Adobe documents < 15 min p95 to Profile, "
                "< 60 min to the data lake); raise smoke.timeout_s or look at the bundle"
            )
            return _fail(client, result, before, bundles_dir, sent_exchanges)
        time.sleep(poll_s)


def _in_new_batches(
    client: PlatformClient, dataset_id: str, token: str, sent_ms: int, checked: set[str]
) -> str | None:
    """`batch <id>` if a batch made since the send holds the record, `failed ...` if it failed."""
    for batch in client.catalog.batches(dataset_id, created_after_ms=sent_ms):
        if batch.id in checked:
            continue
        if (batch.status or "").lower() not in ("success", "failed", "active"):
            continue  # still loading: look again next poll
        checked.add(batch.id)
        if any(token in text for text in client.data_access.batch_texts(batch.id)):
            return f"batch {batch.id}"
        for text in client.data_access.batch_texts(batch.id, failed=True):
            for line in text.splitlines():
                if token in line:
                    try:
                        failure = json.loads(line)
                    except ValueError:
                        failure = {"message": line}
                    return f"failed in batch {batch.id}: {failure.get('code', '')} {failure.get('message', '')}"
    return None


def _fail(
    client: PlatformClient,
    result: SmokeResult,
    before: set[int],
    bundles_dir: Path,
    sent: list[Any] | None = None,
) -> SmokeResult:
    """Write the support bundle: the inlet exchange(s), then the last polls after them."""
    since = [x for x in client.capture.exchanges() if id(x) not in before]
    kept = list(sent) if sent is not None else since
    kept += [x for x in since[-BUNDLE_POLLS_KEPT:] if all(x is not k for k in kept)]
    ids = {
        k: v
        for k, v in {
            "flowId": result.flow_id,
            "datasetId": result.dataset_id,
            "inletUrl": result.inlet_url,
            "xactionId": result.xaction_id,
            "testIdentity": result.identity,
        }.items()
        if v
    }
    bundle = SupportBundle(
        created=datetime.now(UTC).isoformat(),
        exchanges=kept,
        resource_ids=ids,
        note=f"aep-smoke {result.flow_key} ({result.kind}): {result.error}",
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = bundles_dir / f"smoke-{result.flow_key}-{stamp}-{uuid.uuid4().hex[:6]}.json"
    result.bundle = str(bundle.write(path))
    logger.error("smoke of %s failed: %s (bundle %s)", result.flow_key, result.error, path)
    return result
