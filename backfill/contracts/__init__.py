"""Contracts of the CSV exports: the model, the shipped files, header matching and detection."""

from __future__ import annotations

from backfill.contracts.detect import (
    DetectionError,
    HeaderMatch,
    clean_header,
    detect,
    match_header,
)
from backfill.contracts.loader import SHIPPED_DIR, ContractLoadError, load_contracts
from backfill.contracts.model import ColumnSpec, Contract, RuleSpec

__all__ = [
    "SHIPPED_DIR",
    "ColumnSpec",
    "Contract",
    "ContractLoadError",
    "DetectionError",
    "HeaderMatch",
    "RuleSpec",
    "clean_header",
    "detect",
    "load_contracts",
    "match_header",
]
