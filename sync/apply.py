"""Apply: the plan's code path with the writes (`sync.plan.Reconciler` with `act=True`).

Creates what is missing (each through `create_or_find`, so a lost response never makes a second
resource), PATCHes with `If-Match` what drifted, moves flows to the desired state, and records
each resource id and the apply itself (ok, counts by action, error) in the sync history.
"""

from __future__ import annotations

import logging

from aep.client import PlatformClient
from sync.desired import DesiredState
from sync.history import History
from sync.plan import Plan, Reconciler

__all__ = ["apply"]

logger = logging.getLogger("sync.apply")


def apply(
    client: PlatformClient, desired: DesiredState, history: History, *, trigger: str = "cli"
) -> Plan:
    """Make the Platform match the desired state; return what was done.

    Args:
        client: the Platform client.
        desired: the desired dataflows.
        history: where ids, secret fingerprints and the apply are recorded.
        trigger: who asked (`cli`, `daemon`), kept in the history.

    Raises:
        SyncError: a change needs a person (the apply is recorded as failed).
        aep.errors.AEPError: the Platform failed part-way (recorded as failed; what was done
            stays done, and the next apply continues from there).
    """
    apply_id = history.start_apply(trigger)
    reconciler = Reconciler(client, desired, history, act=True)
    try:
        done = reconciler.run()
    except Exception as exc:  # recorded whatever it was, then raised as it was
        history.finish_apply(
            apply_id,
            ok=False,
            counts=reconciler.plan.counts(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    history.finish_apply(apply_id, ok=True, counts=done.counts())
    logger.info("apply %d: %s", apply_id, done.counts())
    return done
