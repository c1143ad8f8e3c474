"""XDM record validation against the schema JSON the Schema Registry returns.

Handles the shapes a schema comes in: `properties` (the `xed-full` view, refs resolved),
`allOf` of inline parts and `$ref`s, and `definitions` inside the same document. A `$ref`
resolves when it points into the document (`#/definitions/x`) or is among the `refs` the caller
passes (class and field group documents by `$id`); any other `$ref` is skipped, not guessed.

Checked: required fields, JSON types (and `meta:xdmType` integer widths), formats `date-time`,
`date`, `email`, `uri`, `enum`, `minimum`/`maximum`, `minLength`/`maxLength`, `pattern`, array
`items`, and `additionalProperties: false`. Fields the schema does not describe pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Problem", "XdmValidator", "check_xdm", "field_schema", "validate_xdm"]

_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$"
)
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
_INT_RANGES: Final = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**53), 2**53 - 1),
}
_MAX_DEPTH: Final = 64


@dataclass(frozen=True)
class Problem:
    """One way a record breaks its schema."""

    code: str
    """`SCHEMA-REQUIRED`, `SCHEMA-TYPE`, `SCHEMA-FORMAT`, `SCHEMA-ENUM`, `SCHEMA-RANGE`,
    `SCHEMA-PATTERN` or `SCHEMA-UNKNOWN-FIELD`."""
    path: str
    """Dotted path of the field, e.g. `person.name.firstName` (`` for the record itself)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<record>'}: {self.message}"


def validate_xdm(
    schema: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    *,
    refs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Problems of `record` under `schema`, as readable strings; `[]` when it is valid.

    Args:
        schema: the schema JSON (any Schema Registry view); None validates nothing.
        record: the XDM record (nested objects).
        refs: documents that `$ref`s may point to, by `$id` (class, field groups, data types).

    Returns:
        One string per problem, `"<dotted path>: <what is wrong>"`.
    """
    return [str(p) for p in check_xdm(schema, record, refs=refs)]


def check_xdm(
    schema: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    *,
    refs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Problem]:
    """Like `validate_xdm`, with each problem's code and path kept apart."""
    if schema is None:
        return []
    return XdmValidator(schema, refs=refs).check(record)


def field_schema(
    schema: Mapping[str, Any] | None,
    path: list[str],
    *,
    refs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The (flattened) sub-schema at `path` (field names; arrays are stepped through), or None."""
    if schema is None:
        return None
    return XdmValidator(schema, refs=refs).field(path)


class XdmValidator:
    """One schema, resolved once and reused for many records (a run validates thousands)."""

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        refs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._walker = _Walker(schema, refs or {}, [])

    def check(self, record: Mapping[str, Any]) -> list[Problem]:
        """Every problem of `record`; `[]` when it is valid."""
        problems: list[Problem] = []
        self._walker.problems = problems
        self._walker.check(self._walker.root, record, "", 0)
        return problems

    def flat(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """`node` (a part of this schema) with its `$ref` and `allOf` merged in."""
        return self._walker.flatten(node, 0)

    def field(self, path: list[str]) -> dict[str, Any] | None:
        """The flattened sub-schema at `path`, stepping through arrays; None if not described."""
        walker = self._walker
        node: dict[str, Any] | None = walker.flatten(walker.root, 0)
        for name in path:
            while node is not None and node.get("type") == "array":
                node = walker.flatten(node.get("items") or {}, 0)
            if node is None:
                return None
            sub = node["properties"].get(name)
            if not isinstance(sub, Mapping):
                return None
            node = walker.flatten(sub, 0)
        return node


class _Walker:
    """Resolves refs and allOf into flat nodes and checks values against them."""

    def __init__(
        self,
        root: Mapping[str, Any],
        refs: Mapping[str, Mapping[str, Any]],
        problems: list[Problem],
    ) -> None:
        self.root = root
        self.refs = refs
        self.problems = problems
        # id(node) -> (node, flat): the node is kept so its id cannot be reused meanwhile
        self._flat: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}

    def resolve(self, ref: str) -> Mapping[str, Any] | None:
        if ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, Mapping) or part not in node:
                    return None
                node = node[part]
            return node if isinstance(node, Mapping) else None
        found = self.refs.get(ref)
        if found is None:
            for key in ("definitions", "$defs"):
                defs = self.root.get(key)
                if isinstance(defs, Mapping):
                    for d in defs.values():
                        if isinstance(d, Mapping) and d.get("$id") == ref:
                            return d
        return found

    def flatten(self, node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        """One node with its `$ref` and `allOf` parts merged: type, properties, required, ..."""
        cached = self._flat.get(id(node))
        if cached is not None and cached[0] is node:
            return cached[1]
        flat = self._flatten(node, depth)
        self._flat[id(node)] = (node, flat)
        return flat

    def _flatten(self, node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {"properties": {}, "required": []}
        if depth > _MAX_DEPTH:
            return out
        parts: list[Mapping[str, Any]] = [node]
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.resolve(ref)
            if target is not None:
                parts.insert(0, self.flatten(target, depth + 1))
        for sub in node.get("allOf") or []:
            if isinstance(sub, Mapping):
                parts.insert(0, self.flatten(sub, depth + 1))
        for part in parts:
            for key, value in part.items():
                if key == "properties" and isinstance(value, Mapping):
                    for name, prop in value.items():
                        if name in out["properties"] and isinstance(prop, Mapping):
                            merged = dict(out["properties"][name])
                            merged.setdefault("allOf", [])
                            merged["allOf"] = [*merged["allOf"], prop]
                            out["properties"][name] = merged
                        else:
                            out["properties"][name] = prop
                elif key == "required" and isinstance(value, list):
                    out["required"] += [r for r in value if r not in out["required"]]
                elif key not in ("allOf", "$ref", "properties", "required"):
                    out[key] = value
        if out["properties"] and "type" not in out:
            out["type"] = "object"
        return out

    def add(self, code: str, path: str, message: str) -> None:
        self.problems.append(Problem(code, path, message))

    def check(self, node: Mapping[str, Any], value: Any, path: str, depth: int) -> None:
        flat = self.flatten(node, depth)
        kind = flat.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind else []
        if value is None:
            return
        if kinds and not any(_is_type(value, k) for k in kinds):
            self.add("SCHEMA-TYPE", path, f"expected {'|'.join(kinds)}, got {_type_name(value)}")
            return
        if "enum" in flat and isinstance(flat["enum"], list) and value not in flat["enum"]:
            self.add("SCHEMA-ENUM", path, f"{value!r} is not one of {flat['enum']!r}")
        if isinstance(value, str):
            self._check_string(flat, value, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._check_number(flat, value, path)
        elif isinstance(value, list):
            items = flat.get("items")
            if isinstance(items, Mapping):
                for i, item in enumerate(value):
                    self.check(items, item, f"{path}[{i}]", depth + 1)
        elif isinstance(value, Mapping):
            self._check_object(flat, value, path, depth)

    def _check_string(self, flat: Mapping[str, Any], value: str, path: str) -> None:
        fmt = flat.get("format") or flat.get("meta:xdmType")
        checks = {"date-time": _DATE_TIME, "date": _DATE, "email": _EMAIL, "uri": _URI}
        rx = checks.get(fmt) if isinstance(fmt, str) else None
        if rx is not None and not rx.match(value):
            self.add("SCHEMA-FORMAT", path, f"{value!r} is not a valid {fmt}")
        if isinstance(flat.get("minLength"), int) and len(value) < flat["minLength"]:
            self.add("SCHEMA-RANGE", path, f"shorter than minLength {flat['minLength']}")
        if isinstance(flat.get("maxLength"), int) and len(value) > flat["maxLength"]:
            self.add("SCHEMA-RANGE", path, f"longer than maxLength {flat['maxLength']}")
        pattern = flat.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    self.add("SCHEMA-PATTERN", path, f"{value!r} does not match {pattern!r}")
            except re.error:
                pass  # a pattern Python cannot compile is not the record's fault

    def _check_number(self, flat: Mapping[str, Any], value: float, path: str) -> None:
        lo, hi = flat.get("minimum"), flat.get("maximum")
        width = _INT_RANGES.get(str(flat.get("meta:xdmType")))
        if width is not None:
            lo = width[0] if lo is None else max(lo, width[0])
            hi = width[1] if hi is None else min(hi, width[1])
        if isinstance(lo, int | float) and value < lo:
            self.add("SCHEMA-RANGE", path, f"{value} is below the minimum {lo}")
        if isinstance(hi, int | float) and value > hi:
            self.add("SCHEMA-RANGE", path, f"{value} is above the maximum {hi}")

    def _check_object(
        self, flat: Mapping[str, Any], value: Mapping[str, Any], path: str, depth: int
    ) -> None:
        props: Mapping[str, Any] = flat["properties"]
        for name in flat["required"]:
            if value.get(name) is None:
                self.add("SCHEMA-REQUIRED", _join(path, name), "required field is missing")
        closed = flat.get("additionalProperties") is False
        for name, sub in value.items():
            prop = props.get(name)
            if isinstance(prop, Mapping):
                self.check(prop, sub, _join(path, name), depth + 1)
            elif closed:
                self.add("SCHEMA-UNKNOWN-FIELD", _join(path, name), "field is not in the schema")
            elif isinstance(flat.get("additionalProperties"), Mapping):
                self.check(flat["additionalProperties"], sub, _join(path, name), depth + 1)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_type(value: Any, kind: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return True  # a type this validator does not know is not held against the record


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
