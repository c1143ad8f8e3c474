"""The synthetic generator and the bundled sample exports of the embedded default."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backfill.contracts import load_contracts
from backfill.samples import GENERATORS, generate
from tests.backfill.validate.helpers import run

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def test_generated_defects_are_found_exactly(tmp_path: Path) -> None:
    gens = [
        generate(
            k,
            tmp_path / f"{k}.csv",
            400,
            defect_rate=0.02,
            duplicate_rate=0.02,
            structural=k == "stripe_payments",
        )
        for k in GENERATORS
    ]
    # One run per file: here each file's own defects are counted; in one run the cross-file
    # rules would also reject, rightly, the line items of rejected bills (test_references).
    for g in gens:
        (res,) = run([g.path], tmp_path / "out" / g.kind)
        assert res.kind == g.kind, res.why
        assert res.rows_read == g.rows
        assert res.rows_rejected == g.expected_rejects > 0, (
            g.kind,
            res.rejected_by_rule,
            g.value_defects,
        )
        assert res.excluded == {"exact_duplicate": g.exact_duplicates}
        assert res.rows_valid == g.rows - g.expected_rejects - g.exact_duplicates


def test_clean_generated_files_pass_whole(tmp_path: Path) -> None:
    gens = [generate(k, tmp_path / f"{k}.csv", 200) for k in GENERATORS]
    for g, res in zip(
        gens, run([g.path for g in gens], tmp_path / "out", max_reject_rate=0.0), strict=True
    ):
        assert (res.status, res.rows_valid, res.rows_rejected) == ("validated", 200, 0), (
            g.kind,
            res.rejected_by_rule,
        )


def test_every_kind_has_a_generator() -> None:
    assert set(GENERATORS) == set(load_contracts())


def test_bundled_samples_validate_with_a_few_rejects(tmp_path: Path) -> None:
    paths = sorted(SAMPLES.glob("*.csv"))
    assert {p.stem for p in paths} == set(GENERATORS)
    for res in run(paths, tmp_path, max_reject_rate=0.05):
        assert res.status == "validated", res.message
        assert res.kind == res.path.stem
        assert res.rows_rejected > 0 and res.rows_valid > 250
        assert pl.read_csv(res.valid_path, infer_schema=False).height == res.rows_valid  # type: ignore[arg-type]
