"""Reconcile: every count compared, every disagreement reported with both sides."""

from __future__ import annotations

from typing import Any

from aep.catalog import Batch
from aep.flows import Run
from backfill.reconcile import reconcile_run


def _run(status: str = "success", errors: list[Any] | None = None, **counts: int) -> Run:
    summary = {"inputRecordCount": 5, "outputRecordCount": 4, "failedRecordCount": 1, **counts}
    return Run.model_validate(
        {
            "id": "r1",
            "metrics": {
                "statusSummary": {"status": status, "errors": errors or []},
                "recordSummary": summary,
            },
            "activities": [{"statusSummary": {"errors": errors or []}}],
        }
    )


def _batch(ok: int, failed: int) -> Batch:
    return Batch(id="b1", status="success", recordCount=ok, failedRecordCount=failed)


def test_counts_that_add_up_reconcile() -> None:
    rec = reconcile_run("k", "f", _run(), [_batch(4, 1)], rows_shipped=5)
    assert rec.ok and rec.problems == []


def test_each_disagreement_is_reported_with_both_sides() -> None:
    rec = reconcile_run("k", "f", _run(outputRecordCount=3), [_batch(4, 0)], rows_shipped=6)
    assert rec.problems == [
        "rows shipped 6 != run inputRecordCount 5",
        "run output 3 + failed 1 != input 5",
        "batches' recordCount 4 != run output 3",
        "batches' failedRecordCount 0 != run failed 1",
    ]


def test_a_failed_run_names_its_errors_once_whatever_their_shape() -> None:
    errors = [{"code": "CONNECTOR-1001-500", "message": "boom"}, "a bare message", None]
    rec = reconcile_run("k", "f", _run("failed", errors), [_batch(4, 1)], rows_shipped=5)
    assert not rec.ok
    assert rec.problems == ["run r1 ended failed: CONNECTOR-1001-500 boom; a bare message"]


def test_a_run_that_wrote_records_is_never_run_again_whatever_its_status(tmp_path) -> None:
    from backfill.ledger import Ledger, Step
    from backfill.migrate import MigrateResult, _settle

    run = _run("partialSuccess")  # wrote 4 of 5: a new run would write those 4 twice
    with Ledger.in_state_dir(tmp_path) as ledger:
        entry = ledger.record(
            "aa", Step.SHIPPED, input_path="a.csv", kind="k", counts={"shipped": 5}
        )
        result = MigrateResult()
        settled = _settle(None, ledger, "k", "f", run, [entry], result, retry=True)  # type: ignore[arg-type]
        after = ledger.get("aa")
    assert settled  # not handed to a new run
    assert after is not None and after.reached(Step.INGESTED)
    assert after.failed_step is Step.RECONCILED and "partialSuccess" in (after.reason or "")
    assert any("partialSuccess" in p for p in result.problems)


def test_a_run_that_failed_before_reading_is_reported_once_not_as_a_count_mismatch() -> None:
    run = _run(
        "failed",
        [{"code": "CONNECTOR-1001-500", "message": "host key unknown"}],
        inputRecordCount=0,
        outputRecordCount=0,
        failedRecordCount=0,
    )
    rec = reconcile_run("k", "f", run, [], rows_shipped=3)
    assert rec.problems == ["run r1 ended failed: CONNECTOR-1001-500 host key unknown"]
