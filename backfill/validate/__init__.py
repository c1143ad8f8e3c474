"""Validate CSV exports against their contracts (issue 4): `validate_files` and its results."""

from __future__ import annotations

from backfill.validate.engine import DEFAULT_MAX_REJECT_RATE, ValidateOptions, validate_files
from backfill.validate.result import FileResult, InvariantError, RunResult

__all__ = [
    "DEFAULT_MAX_REJECT_RATE",
    "FileResult",
    "InvariantError",
    "RunResult",
    "ValidateOptions",
    "validate_files",
]
