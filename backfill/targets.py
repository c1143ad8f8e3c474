"""What each export kind becomes in AEP: an XDM class, tenant fields and a Data Prep mapping.

The default target of a kind is derived from its contract, so one mapping serves every export
era (the validator writes canonical column names): every canonical column becomes a field
`_<tenant>.<kind>.<column>` typed by what the contract converts it to, and a few standard XDM
fields are filled from the contract's identity and event time:

- event kinds (Stripe payments, subscriptions, refunds, ...; Capillary transactions, ...) use the
  ExperienceEvent class: `_id` from the identity column, `timestamp` from the event time;
- profile kinds (`*_customers`) use the Individual Profile class: `personalEmail.address` from
  an `email` column when there is one.

A file `config/mappings/<kind>.json` (shipped, or in `backfill.contracts_dir`'s sibling
`mappings/`) replaces the derived mapping items for that kind; `{TENANT}` in a destination is
replaced by the tenant id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from backfill.contracts.model import ColumnSpec, Contract

__all__ = [
    "EVENT_CLASS",
    "PROFILE_CLASS",
    "SHIPPED_MAPPINGS",
    "Target",
    "TargetError",
    "target_for",
    "with_line_items",
]

PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "config" / "mappings"

XdmType = Literal["string", "integer", "number", "boolean"]


class TargetError(ValueError):
    """A mapping file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Target:
    """The AEP side of one export kind."""

    kind: str
    xdm_class: str
    fields: dict[str, dict[str, Any]]
    """Tenant fields under `_<tenant>.<kind>`: column -> JSON schema of the field."""
    mappings: list[dict[str, Any]] = field(default_factory=list)
    """Data Prep mapping items (newer format); `{TENANT}` stands for the tenant id."""

    @property
    def is_profile(self) -> bool:
        """Whether records are profiles (else experience events)."""
        return self.xdm_class == PROFILE_CLASS

    def schema_body(self, title: str, tenant: str) -> dict[str, Any]:
        """The tenant schema to create (Schema Registry `POST /tenant/schemas`)."""
        body: dict[str, Any] = {
            "title": title,
            "description": f"aep-bridge backfill of {self.kind}",
            "type": "object",
            "allOf": [{"$ref": self.xdm_class}],
            "properties": {
                f"_{tenant}": {
                    "type": "object",
                    "properties": {
                        self.kind: {"type": "object", "properties": dict(self.fields)},
                    },
                }
            },
        }
        if self.is_profile:
            body["meta:immutableTags"] = ["union"]
        return body

    def mapping_body(self, schema_id: str, tenant: str) -> dict[str, Any]:
        """The mapping set to create (Data Prep `POST /mappingSets`, newer format)."""
        items = [
            {**item, "destination": str(item["destination"]).replace("{TENANT}", tenant)}
            for item in self.mappings
        ]
        return {
            "outputSchema": {
                "schemaRef": {
                    "id": schema_id,
                    "contentType": "application/vnd.adobe.xed-full+json;version=1",
                }
            },
            "mappings": items,
        }


def _xdm_field(col: ColumnSpec) -> dict[str, Any]:
    if col.convert in ("minor_units", "unix_seconds"):
        return {"type": "integer"}
    if col.convert == "iso_utc":
        return {"type": "string", "format": "date-time"}
    if col.type == "int":
        return {"type": "integer"}
    if col.type == "bool":
        return {"type": "boolean"}
    if col.type in ("decimal", "money"):
        return {"type": "number"}
    return {"type": "string"}


def _timestamp_item(col: ColumnSpec) -> dict[str, Any] | None:
    if col.convert == "iso_utc":
        return {"sourceType": "ATTRIBUTE", "source": col.name, "destination": "timestamp"}
    if col.convert == "unix_seconds":
        # Stripe history keeps `created` in Unix seconds (as the live source writes it); the
        # event's timestamp is the same instant as ISO 8601.
        return {
            "sourceType": "EXPRESSION",
            "source": f"date(to_bigint({col.name}) * 1000)",
            "destination": "timestamp",
        }
    return None


def derive_target(contract: Contract) -> Target:
    """The default target of a contract (see the module docstring)."""
    profile = contract.kind.endswith("_customers")
    fields = {c.name: _xdm_field(c) for c in contract.columns}
    items: list[dict[str, Any]] = [
        {
            "sourceType": "ATTRIBUTE",
            "source": c.name,
            "destination": f"_{{TENANT}}.{contract.kind}.{c.name}",
        }
        for c in contract.columns
    ]
    names = {c.name for c in contract.columns}
    if profile:
        if "email" in names:
            items.append(
                {
                    "sourceType": "ATTRIBUTE",
                    "source": "email",
                    "destination": "personalEmail.address",
                }
            )
    else:
        items.append(
            {"sourceType": "ATTRIBUTE", "source": contract.identity[0], "destination": "_id"}
        )
        if contract.event_time:
            ts = _timestamp_item(contract.column(contract.event_time))
            if ts:
                items.append(ts)
    return Target(
        kind=contract.kind,
        xdm_class=PROFILE_CLASS if profile else EVENT_CLASS,
        fields=fields,
        mappings=items,
    )


def target_for(
    contract: Contract, *, mappings_dirs: tuple[Path, ...] = (SHIPPED_MAPPINGS,)
) -> Target:
    """The target of a contract: derived, with mapping items replaced by a mapping file if any.

    A later directory in `mappings_dirs` wins over an earlier one.

    Raises:
        TargetError: a mapping file is not valid JSON or not of the expected shape.
    """
    target = derive_target(contract)
    for directory in mappings_dirs:
        path = directory / f"{contract.kind}.json"
        if path.is_file():
            data = _read_mapping_file(path)
            target = Target(
                kind=target.kind,
                xdm_class=str(data.get("xdmClass", target.xdm_class)),
                fields={**target.fields, **data.get("fields", {})},
                mappings=list(data["mappings"]),
            )
    return target


LINE_ITEM_PRODUCT_FIELDS = {
    "item_code": "SKU",
    "description": "name",
    "quantity": "quantity",
    "amount": "priceTotal",
}
"""Line-item column -> field of an XDM `productListItems` entry (Commerce Details)."""


def with_line_items(target: Target, *, source: str = "line_items") -> Target:
    """The target of nested records (`backfill.nest`): the bill's mapping as it is, plus its
    `source` array's line items as the event's `productListItems`, one entry per line item."""
    items = [
        {
            "sourceType": "ATTRIBUTE",
            "source": f"{source}.{column}",
            "destination": f"productListItems.{product}",
        }
        for column, product in LINE_ITEM_PRODUCT_FIELDS.items()
    ]
    return replace(target, mappings=[*target.mappings, *items])


def _read_mapping_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TargetError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: a JSON object with a `mappings` list was expected")
    mappings = data.get("mappings")
    if not isinstance(mappings, list) or not mappings:
        raise TargetError(f"{path}: `mappings` must be a non-empty list of mapping items")
    for n, item in enumerate(mappings):
        if not (isinstance(item, dict) and isinstance(item.get("destination"), str)):
            raise TargetError(f"{path}: mappings[{n}] needs a `destination` string")
    if not isinstance(data.get("fields", {}), dict):
        raise TargetError(f"{path}: `fields` must be an object of field schemas")
    return data
