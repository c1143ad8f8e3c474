"""The duplicates pass groups identities and unique values by a 64-bit hash: a hash shared by
different values must only cost time, never change a result. Forced here by a hash that
collides for every value, against the golden files of every defects fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill.validate import engine
from tests.backfill.validate.helpers import FIXTURES, golden, run, triples

DEFECTS = sorted(FIXTURES.glob("*/*_defects.csv"))


def _lines(path: Path | None) -> list[str]:
    assert path is not None
    return sorted(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", DEFECTS, ids=lambda p: p.parent.name)
def test_colliding_hashes_give_the_same_results(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (plain,) = run([path], tmp_path / "plain")
    real_hash = engine._value_hash
    # Two hash values for everything: every identity shares its hash with about half the others.
    monkeypatch.setattr(engine, "_value_hash", lambda e: real_hash(e) % 2)
    (coll,) = run([path], tmp_path / "collide")
    assert coll.status == plain.status == "validated"
    assert triples(coll.rejects_path) == golden(path, "rejects")  # type: ignore[arg-type]
    assert triples(coll.excluded_path, ("line", "reason")) == golden(path, "excluded")  # type: ignore[arg-type]
    assert (coll.rows_valid, coll.rows_rejected, coll.excluded, coll.duplicates) == (
        plain.rows_valid,
        plain.rows_rejected,
        plain.excluded,
        plain.duplicates,
    )
    assert _lines(coll.valid_path) == _lines(plain.valid_path)
