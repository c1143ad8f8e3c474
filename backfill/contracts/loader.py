"""Load the shipped contracts (config/contracts/*.toml) and the user's additions.

A user file in `settings.backfill.contracts_dir` either replaces a shipped contract (same
`kind`, a full contract) or extends one without touching code:

    extends = "stripe_payments"
    max_reject_rate = 0.02          # optional
    number_locale = "de"            # optional
    [aliases]
    created = ["Erstellt (UTC)"]    # canonical column -> extra headers
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backfill.contracts.model import Contract

__all__ = ["SHIPPED_DIR", "ContractLoadError", "load_contracts"]

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "config" / "contracts"

_EXTEND_KEYS = {"extends", "aliases", "max_reject_rate", "number_locale"}


class ContractLoadError(Exception):
    """A contract file is unreadable, invalid, or extends a kind that does not exist."""


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContractLoadError(f"{path}: {exc}") from None


def _parse(path: Path, data: dict[str, Any]) -> Contract:
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ContractLoadError(f"{path}: {problems}") from None


def _extend(path: Path, base: Contract, data: dict[str, Any]) -> Contract:
    unknown = set(data) - _EXTEND_KEYS
    if unknown:
        raise ContractLoadError(f"{path}: keys not allowed in an extension: {sorted(unknown)}")
    raw = base.model_dump()
    names = {c["name"] for c in raw["columns"]}
    for name, extra in (data.get("aliases") or {}).items():
        if name not in names:
            raise ContractLoadError(f"{path}: [aliases] names unknown column {name!r}")
        if isinstance(extra, str):
            extra = [extra]
        for col in raw["columns"]:
            if col["name"] == name:
                col["aliases"] = tuple(col["aliases"]) + tuple(extra)
    for key in ("max_reject_rate", "number_locale"):
        if key in data:
            raw[key] = data[key]
    return _parse(path, raw)


def _check_references(contracts: dict[str, Contract]) -> dict[str, Contract]:
    problems = [
        f"contract {k}: {p}" for k, c in contracts.items() for p in c.check_targets(contracts)
    ]
    if problems:
        raise ContractLoadError("; ".join(problems))
    return contracts


def load_contracts(
    user_dir: Path | None = None, *, shipped_dir: Path = SHIPPED_DIR
) -> dict[str, Contract]:
    """Return every contract by kind: shipped ones, then the user's replacements/extensions.

    Raises:
        ContractLoadError: a file cannot be read or is not a valid contract, or a reference
            names a kind or column that does not exist.
    """
    contracts: dict[str, Contract] = {}
    for path in sorted(shipped_dir.glob("*.toml")):
        c = _parse(path, _read(path))
        contracts[c.kind] = c
    if user_dir is None:
        return _check_references(contracts)
    if not user_dir.is_dir():
        raise ContractLoadError(f"contracts_dir {user_dir} is not a directory")
    files = sorted(user_dir.glob("*.toml"))
    full = [(p, d) for p, d in ((p, _read(p)) for p in files)]
    for path, data in full:
        if "extends" not in data:
            c = _parse(path, data)
            contracts[c.kind] = c
    for path, data in full:
        if "extends" in data:
            base = contracts.get(data["extends"])
            if base is None:
                raise ContractLoadError(f"{path}: extends unknown kind {data['extends']!r}")
            contracts[base.kind] = _extend(path, base, data)
    return _check_references(contracts)
