"""Shared helpers for the validation tests: run the validator, read outputs, load goldens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from backfill.contracts import load_contracts
from backfill.validate import FileResult, ValidateOptions, validate_files

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"


def run(paths: list[Path], out: Path, **opts: object) -> list[FileResult]:
    """Validate `paths` into `out` (max reject rate 1 unless given) and return the file results."""
    opts.setdefault("max_reject_rate", 1.0)
    result = validate_files(paths, load_contracts(), ValidateOptions(out_dir=out, **opts))  # type: ignore[arg-type]
    for f in result.files:
        f.check_invariant()
    return result.files


def triples(
    path: Path, cols: tuple[str, ...] = ("line", "column", "rule")
) -> list[tuple[object, ...]]:
    """Rows of an output/golden CSV reduced to `cols`, empty text as ''."""
    df = pl.read_csv(path, infer_schema=False, columns=list(cols))
    return [tuple("" if v is None else v for v in row) for row in df.iter_rows()]


def golden(path: Path, suffix: str) -> list[tuple[object, ...]]:
    """The hand-written golden file next to a fixture."""
    g = path.with_name(path.name.replace(".csv", f".{suffix}.golden.csv"))
    cols = ("line", "reason") if suffix == "excluded" else ("line", "column", "rule")
    return triples(g, cols)


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """Write a CSV under tmp and return its path."""
    p = tmp / name
    p.write_bytes(text.encode(encoding))
    return p


NOW = datetime(2026, 11, 25, 12, 0, 0)
