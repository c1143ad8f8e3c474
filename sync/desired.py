"""Desired state: the streaming dataflows of `config/flows.toml`, as pydantic models.

One `FlowDecl` per `[flows.<key>]` table is one create chain of Adobe's tutorials (seeds
000-004): schema -> dataset -> base connection (optional, shared, `[connections.<key>]`) ->
source connection -> data lake target connection -> mapping set -> flow. `load_desired` reads
the file, checks it, and resolves the secrets each base connection names from the `flows.*`
settings (environment only); every problem is reported at once with its key path, as
`config.loader.ConfigError`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from aep.names import NAME_PATTERN
from config.loader import ConfigError
from config.settings import Settings

__all__ = [
    "DEV_PLACEHOLDER_SECRET",
    "SHIPPED_FLOWS",
    "BaseConnectionDecl",
    "DatasetDecl",
    "DesiredState",
    "FlowDecl",
    "FlowsFile",
    "MappingDecl",
    "SchemaDecl",
    "SmokeDecl",
    "load_desired",
]

SHIPPED_FLOWS = Path(__file__).resolve().parent.parent / "config" / "flows.toml"
DEV_PLACEHOLDER_SECRET = "aep-bridge-emulator-placeholder"
"""Sent for a missing source secret when the platform is the emulator (it never uses it)."""

DATA_LAKE_SPEC = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"

FieldType = Literal["string", "integer", "number", "boolean", "object"]


class _Decl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseConnectionDecl(_Decl):
    """A base connection (`POST /connections`) shared by the flows that name it."""

    description: str = ""
    connection_spec_id: str
    auth_spec_name: str
    params: dict[str, Any] = Field(default_factory=dict)
    """Auth params that are not secret (shown back by a GET, so compared for drift)."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Auth param -> name of the `flows.*` SecretStr setting holding its value."""


class SchemaDecl(_Decl):
    """The target XDM schema: an existing one (`id`), or one created under the flow's name."""

    id: str | None = None
    xdm_class: Literal["profile", "experienceevent"] = Field(default="profile", alias="class")
    description: str = ""
    union: bool = False
    """Tag the schema `union` so its dataset may feed Real-Time Customer Profile."""
    identity: dict[str, str] | None = None
    """Primary identity descriptor: `{path = "/personalEmail/address", namespace = "Email"}`."""
    fields: dict[str, FieldType] = Field(default_factory=dict)
    """Tenant fields under `_{TENANT}`, dotted path -> type; parents become objects."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def class_id(self) -> str:
        """The XDM class `$id`."""
        return PROFILE_CLASS if self.xdm_class == "profile" else EVENT_CLASS

    def body(self, title: str, tenant: str) -> dict[str, Any]:
        """The `POST /tenant/schemas` body."""
        body: dict[str, Any] = {
            "title": title,
            "description": self.description or title,
            "type": "object",
            "allOf": [{"$ref": self.class_id}],
        }
        if self.fields:
            body["properties"] = {
                f"_{tenant}": {"type": "object", "properties": _tree(self.fields)}
            }
        if self.union:
            body["meta:immutableTags"] = ["union"]
        return body


def _tree(fields: dict[str, FieldType]) -> dict[str, Any]:
    """Dotted field paths -> nested JSON-schema `properties`."""
    root: dict[str, Any] = {}
    for path, kind in sorted(fields.items()):
        node = root
        parts = path.split(".")
        for part in parts[:-1]:
            entry = node.setdefault(part, {"type": "object", "properties": {}})
            entry.setdefault("properties", {})
            node = entry["properties"]
        leaf = node.setdefault(parts[-1], {"type": kind})
        if kind == "object":
            leaf.setdefault("properties", {})
        else:
            leaf["type"] = kind
    return root


class DatasetDecl(_Decl):
    """The target dataset: an existing one (`id`), or one created under the flow's name."""

    id: str | None = None
    profile: bool = False
    """Enable it for Profile and Identity (the schema must be `union`-tagged, with an identity)."""


class MappingDecl(_Decl):
    """The Data Prep mapping set: (source, destination) pairs in one of the two formats."""

    format: Literal["legacy", "legacy-items", "current"] = "current"
    """`legacy`: seed 002's `xdmSchema` + items `sourceAttribute`/`destinationXdmPath`;
    `legacy-items`: seed 004's `outputSchema.schemaRef` + those same items;
    `current`: `outputSchema.schemaRef` + items `sourceType`/`source`/`destination`."""
    items: list[tuple[str, str]]

    @field_validator("items")
    @classmethod
    def _not_empty(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not value:
            raise ValueError("a mapping set needs at least one [source, destination] pair")
        return value

    def pairs(self, tenant: str) -> list[tuple[str, str]]:
        """The pairs with `{TENANT}` resolved."""
        return [(s, d.replace("{TENANT}", tenant)) for s, d in self.items]

    def body(self, schema_id: str, tenant: str) -> dict[str, Any]:
        """The `POST /mappingSets` body (the tag is added by `aep.mappings.with_tag`)."""
        output_schema = {"schemaRef": {"id": schema_id, "contentType": XED_FULL}}
        if self.format == "current":
            return {
                "outputSchema": output_schema,
                "mappings": [
                    {"sourceType": "ATTRIBUTE", "source": s, "destination": d}
                    for s, d in self.pairs(tenant)
                ],
            }
        items = [
            {"destinationXdmPath": d, "sourceAttribute": s, "identity": False, "version": 0}
            for s, d in self.pairs(tenant)
        ]
        if self.format == "legacy-items":
            return {"outputSchema": output_schema, "mappings": items}
        return {"version": 0, "xdmSchema": schema_id, "xdmVersion": "1.0", "mappings": items}


class SmokeDecl(_Decl):
    """How `aep-smoke` builds its test record for a flow."""

    record: str | None = None
    """A JSON template; `{email}`, `{id}`, `{now}` (ISO 8601) and `{now_s}` are filled in.
    Unset: built from the mapping's source fields."""
    identity_namespace: str | None = None
    """Look the test identity up in Profile under this namespace (Profile-enabled datasets)."""


class FlowDecl(_Decl):
    """One desired dataflow and its chain."""

    key: str = ""
    description: str = ""
    base_connection: str | None = None
    """Key of a `[connections.<key>]` table; unset for sources with no base connection."""
    connection_spec_id: str
    provider_id: str | None = None
    """Sent in the source connection (Customer.io's form, seed 004)."""
    flow_spec_id: str
    source_description: str = ""
    source_data: dict[str, Any] | None = None
    source_params: dict[str, Any] | None = None
    target_description: str = ""
    target_format: str | None = None
    """The target connection's `data.format` (`parquet_xdm` seed 002, `json` seed 004, none 003)."""
    target_schema_version: str = XED_FULL
    schedule: dict[str, Any] | None = None
    """`{frequency, interval}` for batch flow specs; `startTime` is set when created."""
    state: Literal["enabled", "disabled"] = "enabled"
    schema_: SchemaDecl = Field(alias="schema")
    dataset: DatasetDecl = Field(default_factory=DatasetDecl)
    mapping: MappingDecl
    smoke: SmokeDecl = Field(default_factory=SmokeDecl)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        unknown = set(value) - {"frequency", "interval", "backfill"}
        if unknown:
            raise ValueError(
                f"unknown schedule keys {sorted(unknown)} (startTime is set on create)"
            )
        if value.get("frequency") not in ("once", "minute", "hour", "day", "week"):
            raise ValueError("schedule.frequency must be once, minute, hour, day or week")
        return value


class FlowsFile(_Decl):
    """The whole file."""

    connections: dict[str, BaseConnectionDecl] = Field(default_factory=dict)
    flows: dict[str, FlowDecl] = Field(default_factory=dict)


class DesiredState(BaseModel):
    """The checked file, with each base connection's secrets resolved (never printed)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str
    prefix: str
    connections: dict[str, BaseConnectionDecl]
    flows: dict[str, FlowDecl]
    secrets: dict[str, dict[str, SecretStr]] = Field(default_factory=dict, repr=False)
    """Connection key -> auth param -> value."""

    def auth(self, connection_key: str) -> dict[str, Any]:
        """The full `auth` object of a base connection, secrets included (for sending only)."""
        decl = self.connections[connection_key]
        params: dict[str, Any] = dict(decl.params)
        for param, value in self.secrets.get(connection_key, {}).items():
            params[param] = value.get_secret_value()
        return {"specName": decl.auth_spec_name, "params": params}

    def secret_values(self) -> list[str]:
        """Every resolved secret (for the redactor)."""
        return [v.get_secret_value() for c in self.secrets.values() for v in c.values()]


def _problems_of(exc: ValidationError, where: str) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        out.append(f"{where}{loc}: {err['msg']}")
    return out


def _check_keys(file: FlowsFile) -> list[str]:
    problems = []
    for key in [*file.flows, *file.connections]:
        if not NAME_PATTERN.fullmatch(key):
            problems.append(
                f"{key}: a key may only hold letters, digits, '.', '_' and '-' (it names resources)"
            )
    for key, flow in file.flows.items():
        if flow.base_connection and flow.base_connection not in file.connections:
            problems.append(
                f"flows.{key}.base_connection: no [connections.{flow.base_connection}] table"
            )
        if flow.dataset.profile and not (flow.schema_.union or flow.schema_.id):
            problems.append(
                f"flows.{key}.dataset.profile: needs schema.union = true (and schema.identity)"
            )
        if flow.smoke.record is not None:
            try:
                json.loads(_fill(flow.smoke.record))
            except ValueError as exc:
                problems.append(f"flows.{key}.smoke.record: not JSON once filled in: {exc}")
    return problems


def _fill(template: str) -> str:
    """A smoke template with placeholder values (for checking that it is JSON)."""
    for token, value in (("{email}", "x@example.com"), ("{id}", "x"), ("{now}", "x")):
        template = template.replace(token, value)
    return template.replace("{now_s}", "0")


def load_desired(settings: Settings, path: Path | None = None) -> DesiredState:
    """Read and check the desired dataflows; resolve the secrets they name.

    Args:
        settings: the loaded settings (`flows.prefix`, `flows.file`, the `flows.*` secrets,
            `platform.mode`).
        path: the file; default `flows.file`, else the shipped `config/flows.toml`.

    Raises:
        ConfigError: every problem with its key path (bad TOML, unknown keys, a missing secret
            in remote mode, a base connection nobody declared).
    """
    file_path = path or settings.flows.file or SHIPPED_FLOWS
    source = str(file_path)
    try:
        data = tomllib.loads(file_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, ["file not found (flows.file)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    flows = data.get("flows")
    if isinstance(flows, dict):
        for key, table in flows.items():
            if isinstance(table, dict):
                table.setdefault("key", key)
    try:
        parsed = FlowsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems_of(exc, "")) from None
    problems = _check_keys(parsed)
    secrets: dict[str, dict[str, SecretStr]] = {}
    for key, conn in parsed.connections.items():
        resolved: dict[str, SecretStr] = {}
        for param, setting in conn.secrets.items():
            if setting not in type(settings.flows).model_fields:
                problems.append(
                    f"connections.{key}.secrets.{param}: no setting flows.{setting} "
                    "(name one of the flows.* secrets)"
                )
                continue
            value = getattr(settings.flows, setting)
            if not isinstance(value, SecretStr | None):
                problems.append(f"connections.{key}.secrets.{param}: flows.{setting} is no secret")
                continue
            if value is None or not value.get_secret_value():
                if settings.platform.mode == "remote":
                    problems.append(
                        f"connections.{key}.secrets.{param}: set the environment variable "
                        f"AEP_BRIDGE_FLOWS__{setting.upper()}"
                    )
                    continue
                value = SecretStr(DEV_PLACEHOLDER_SECRET)
            resolved[param] = value
        secrets[key] = resolved
    if problems:
        raise ConfigError(source, problems)
    return DesiredState(
        source=source,
        prefix=settings.flows.prefix,
        connections=dict(parsed.connections),
        flows=dict(parsed.flows),
        secrets=secrets,
    )
