"""Stripe objects for RestStorageToAEP runs and explore, read from a fixture directory.

Layout: `<dir>/v1/<resource>.jsonl` (one Stripe object per line, as the Stripe API returns it)
and optionally `<dir>/schemas/<resource>.json` (the JSON schema explore returns). Without a
directory the fixtures shipped in `emulator/runner/fixtures/stripe` are used (made-up test
objects, no customer data). The resource comes from the source connection's
`params.resourcePath` (`charges`, `customers`, `subscriptions`, `refunds`,
`balance_transactions`, `prices`; `v1/` prefixes and slashes are tolerated).

Each object reaches the mapping as `{"data": <object>}`, so mapping sources read `data.id`,
`data.amount` as the Stripe tutorial's mapping set does. Objects are new when their `created`
time (epoch seconds) is after the run's watermark.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from emulator.runner.formats import FormatOptions, InputRecord, parse_file
from emulator.runner.types import RowError, SourceError, UnknownResourceError

__all__ = [
    "DEFAULT_FIXTURES",
    "STRIPE_RESOURCES",
    "StripeBatch",
    "infer_schema",
    "read_stripe",
    "resource_name",
    "stripe_resource_schema",
]

#: The fixtures shipped with the emulator (package data).
DEFAULT_FIXTURES: Final = Path(__file__).parent / "fixtures" / "stripe"
#: Resource paths the Stripe source documents (aep-api.md §3.2).
STRIPE_RESOURCES: Final = (
    "charges",
    "subscriptions",
    "refunds",
    "balance_transactions",
    "customers",
    "prices",
)
_JS_INT: Final = {"minimum": -9007199254740992, "maximum": 9007199254740991}


def resource_name(path: str) -> str:
    """`/v1/charges`, `v1/charges.jsonl`, `charges` → `charges`."""
    name = path.strip().strip("/")
    if name.startswith("v1/"):
        name = name[3:]
    if name.endswith(".jsonl"):
        name = name[: -len(".jsonl")]
    if not name or "/" in name or name.startswith("."):
        raise UnknownResourceError(f"{path!r} is not a Stripe resource path")
    return name


def _objects_file(fixtures: Path | None, name: str) -> Path:
    for root in ([fixtures] if fixtures is not None else []) + [DEFAULT_FIXTURES]:
        candidate = root / "v1" / f"{name}.jsonl"
        if candidate.is_file():
            return candidate
    where = f"{fixtures}/v1 or the shipped fixtures" if fixtures else "the shipped fixtures"
    raise UnknownResourceError(
        f"Stripe resource {name!r} has no objects in {where} (known: {', '.join(STRIPE_RESOURCES)})"
    )


def stripe_resource_schema(stripe_fixtures: Path | None, path: str) -> dict[str, Any]:
    """The JSON schema of a Stripe resource, as explore returns it under `schema`.

    `<dir>/schemas/<resource>.json` when present, else inferred from `<dir>/v1/<resource>.jsonl`,
    else the shipped schema; shaped `{"type": "object", "properties": {"data": {...}}}`.

    Raises:
        UnknownResourceError: neither the fixtures nor the defaults hold the resource.
    """
    name = resource_name(path)
    roots = ([stripe_fixtures] if stripe_fixtures is not None else []) + [DEFAULT_FIXTURES]
    for root in roots:
        schema_file = root / "schemas" / f"{name}.json"
        if schema_file.is_file():
            loaded = json.loads(schema_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                return loaded
        objects = root / "v1" / f"{name}.jsonl"
        if objects.is_file():
            parsed = parse_file(objects.read_bytes(), str(objects), FormatOptions("json"))
            data = infer_schema([r.values for r in parsed.records])
            return {"type": "object", "properties": {"data": data}}
    raise UnknownResourceError(
        f"Stripe resource {name!r} is not known (known: {', '.join(STRIPE_RESOURCES)})"
    )


def infer_schema(values: list[Any]) -> dict[str, Any]:
    """A JSON schema in the explore response's style covering every value given.

    Nulls give `{}` (untyped), integers carry JavaScript's safe range, objects list properties.
    """
    present = [v for v in values if v is not None]
    if not present:
        return {}
    if all(isinstance(v, Mapping) for v in present):
        keys: dict[str, list[Any]] = {}
        for v in present:
            for k, sub in v.items():
                keys.setdefault(k, []).append(sub)
        return {"type": "object", "properties": {k: infer_schema(s) for k, s in keys.items()}}
    if all(isinstance(v, list) for v in present):
        items = [item for v in present for item in v]
        return {"type": "array", "items": infer_schema(items)}
    if all(isinstance(v, bool) for v in present):
        return {"type": "boolean"}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return {"type": "integer", **_JS_INT}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return {"type": "number"}
    if all(isinstance(v, str) for v in present):
        return {"type": "string"}
    return {}


class StripeBatch:
    """The new objects of one resource, as input records plus row errors."""

    def __init__(
        self,
        file: str,
        records: list[InputRecord],
        errors: list[RowError],
        watermark_ms: int | None,
    ) -> None:
        self.file = file
        self.records = records
        self.errors = errors
        self.watermark_ms = watermark_ms


def read_stripe(
    stripe_fixtures: Path | None, source_connection: Mapping[str, Any], since_ms: int | None
) -> StripeBatch:
    """Read the source connection's resource, keeping objects created after `since_ms`.

    Raises:
        SourceError: no `params.resourcePath`, or the resource is unknown.
    """
    params = source_connection.get("params") or {}
    path = params.get("resourcePath") or params.get("path")
    if not path:
        raise SourceError("the Stripe source connection has no params.resourcePath")
    name = resource_name(str(path))
    objects = _objects_file(stripe_fixtures, name)
    try:
        content = objects.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read Stripe fixtures {objects}: {exc}") from None
    parsed = parse_file(content, str(objects), FormatOptions("json"))
    fresh: list[InputRecord] = []
    newest = since_ms
    for rec in parsed.records:
        obj = rec.values
        inner = obj["data"] if set(obj) == {"data"} and isinstance(obj["data"], dict) else obj
        created = inner.get("created")
        created_ms = (
            int(created) * 1000
            if isinstance(created, int | float) and not isinstance(created, bool)
            else None
        )
        if created_ms is not None:
            newest = created_ms if newest is None else max(newest, created_ms)
            if since_ms is not None and created_ms <= since_ms:
                continue
        fresh.append(InputRecord(rec.file, rec.line, {"data": inner}, rec.raw))
    return StripeBatch(str(objects), fresh, parsed.errors, newest)
