"""Apply a Data Prep mapping set to one input record, building the nested XDM record.

Both request formats are read (aep-api.md §4.1), and mixes of them: legacy items
(`sourceAttribute` → `destinationXdmPath`, `identity`/`namespaceCode`) and newer items
(`sourceType` ATTRIBUTE / EXPRESSION / CONSTANT (alias STATIC), `source` → `destination`),
including the stored forms `text/x.schema-path` (ATTRIBUTE) and `text/x.aep-xl` (EXPRESSION).

Rules, in the order they matter:
- Empty strings (CSV's empty cells) are null, and null fields are left out of the record.
- Values are converted to the type the target schema gives the destination field (integer,
  number, boolean, string, date-time/date formats, array, object); a value that does not
  convert is a `MappingError` with code `MAPPING-TYPE`: the record fails, it is not dropped.
- A source read through an array (`productLineItems.SKU`) fans back out into an array of
  objects on the destination side (`productListItems[i].SKU`).
- `identityMap.<namespace>` takes a scalar or a list of ids and stores `[{"id": …}]`; legacy
  items with `identity: true` and `namespaceCode` add the value to `identityMap` too.
- A destination object written twice is merged, so a whole-object mapping and mappings of
  its sub-fields (seed 002: `payment_method_details` and `payment_method_details.card.*`) agree.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from emulator.runner.expressions import Expression, compile_expression, to_datetime
from emulator.runner.paths import Fanout, get_path, parse_path
from emulator.runner.types import MappingError, MappingSetError
from emulator.runner.xdm import XdmValidator

__all__ = [
    "BoundMapping",
    "CompiledMapping",
    "Rule",
    "compile_mapping_set",
    "map_record",
    "validate_mappings",
]

SourceKind = Literal["ATTRIBUTE", "EXPRESSION", "CONSTANT"]

_KINDS: Final[dict[str, SourceKind]] = {
    "ATTRIBUTE": "ATTRIBUTE",
    "TEXT/X.SCHEMA-PATH": "ATTRIBUTE",
    "EXPRESSION": "EXPRESSION",
    "TEXT/X.AEP-XL": "EXPRESSION",
    "CONSTANT": "CONSTANT",
    "STATIC": "CONSTANT",
}
_TRUE: Final = frozenset({"true", "1", "yes", "y", "t"})
_FALSE: Final = frozenset({"false", "0", "no", "n", "f"})


@dataclass(frozen=True)
class Rule:
    """One mapping of a compiled set."""

    kind: SourceKind
    source: str
    destination: str
    dest: tuple[str | int, ...]
    source_path: tuple[str | int, ...] | None
    expression: Expression | None
    namespace: str | None
    """Identity namespace of a legacy `identity: true` item."""
    primary: bool


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping set ready to apply; None rules means records pass through as they are."""

    rules: tuple[Rule, ...] | None

    def bind(
        self,
        schema: Mapping[str, Any] | None = None,
        *,
        refs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> BoundMapping:
        """This mapping with the target schema looked up once for every destination."""
        validator = XdmValidator(schema, refs=refs) if schema is not None else None
        targets: list[_Target] = []
        for rule in self.rules or ():
            names = _names(rule.dest)
            if validator is None:
                targets.append(_Target(None, (False,) * len(rule.dest), False))
                continue
            arrays = tuple(
                _is_array(validator.field(_names(rule.dest[: i + 1])))
                for i in range(len(rule.dest))
            )
            leaf = validator.field(names)
            targets.append(_Target(leaf, arrays, _is_array(leaf)))
        return BoundMapping(self.rules, tuple(targets), validator)

    def apply(
        self,
        record: Mapping[str, Any],
        *,
        schema: Mapping[str, Any] | None = None,
        refs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Map one input record (binds the schema each call; bind once for many records).

        Raises:
            MappingError: a value does not convert or an expression fails on this record.
        """
        return self.bind(schema, refs=refs).apply(record)


@dataclass(frozen=True)
class _Target:
    """What the schema says about one rule's destination."""

    schema: dict[str, Any] | None
    """The flattened leaf schema, None when the schema does not describe it."""
    arrays: tuple[bool, ...]
    """Per destination prefix `dest[: i + 1]`: whether the schema makes it an array."""
    leaf_array: bool


@dataclass(frozen=True)
class BoundMapping:
    """A compiled mapping set bound to one target schema."""

    rules: tuple[Rule, ...] | None
    targets: tuple[_Target, ...]
    validator: XdmValidator | None

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Map one input record.

        Raises:
            MappingError: a value does not convert or an expression fails on this record.
        """
        if self.rules is None:
            return _expand_dotted(record)
        out: dict[str, Any] = {}
        for rule, target in zip(self.rules, self.targets, strict=True):
            value = _source_value(rule, record)
            if _is_null(value):
                continue
            if rule.dest[0] == "identityMap" and len(rule.dest) == 2:
                value = _identities(value, rule.primary)
            else:
                value = _convert(value, target.schema, rule.destination, self.validator)
            _write(out, rule.dest, value, target)
            if rule.namespace and not _is_null(value):
                _add_identity(out, rule.namespace, value, rule.primary)
        return out


def _is_array(node: Mapping[str, Any] | None) -> bool:
    return node is not None and node.get("type") == "array"


def compile_mapping_set(mapping_set: Mapping[str, Any] | None) -> CompiledMapping:
    """Read a stored or posted mapping set once (either format).

    Raises:
        MappingSetError: a mapping without a destination, an unknown `sourceType`, an
            expression with a syntax error or an unknown function.
    """
    if mapping_set is None:
        return CompiledMapping(None)
    return _compile_cached(json.dumps(mapping_set.get("mappings"), sort_keys=True, default=str))


def validate_mappings(mappings: list[Any]) -> list[MappingSetError | None]:
    """One entry per mapping: None when it compiles, else why not (for `/mappingSets/validate`)."""
    results: list[MappingSetError | None] = []
    for i, item in enumerate(mappings):
        try:
            _compile_rule(i, item)
        except MappingSetError as exc:
            results.append(exc)
        else:
            results.append(None)
    return results


def map_record(
    mapping_set: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    *,
    schema: Mapping[str, Any] | None = None,
    refs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Map one input record with a mapping set (interfaces.md §2).

    Args:
        mapping_set: as stored by Data Prep, either format; None returns the record as it is
            (dotted top-level keys expanded into nested objects).
        record: a flat (CSV) or nested (JSON) input record.
        schema: the target XDM schema; when given, values convert to its field types.
        refs: documents the schema's `$ref`s point to, by `$id`.

    Raises:
        MappingError: with `code` and `message`; `MappingSetError` (a subclass) when the
            mapping set itself is unusable.
    """
    return compile_mapping_set(mapping_set).apply(record, schema=schema, refs=refs)


@functools.lru_cache(maxsize=64)
def _compile_cached(mappings_json: str) -> CompiledMapping:
    items = json.loads(mappings_json)
    if items is None or items == []:
        return CompiledMapping(None)
    if not isinstance(items, list):
        raise MappingSetError("MAPPING-SET", "the mapping set's `mappings` is not a list")
    return CompiledMapping(tuple(_compile_rule(i, item) for i, item in enumerate(items)))


def _compile_rule(index: int, item: Any) -> Rule:
    where = f"mappings[{index}]"
    if not isinstance(item, Mapping):
        raise MappingSetError("MAPPING-SET", f"{where} is not an object")
    raw_kind = str(item.get("sourceType") or "ATTRIBUTE").upper()
    kind = _KINDS.get(raw_kind)
    if kind is None:
        raise MappingSetError(
            "MAPPING-SET", f"{where}: unknown sourceType {item.get('sourceType')!r}"
        )
    source = item.get("source", item.get("sourceAttribute"))
    destination = item.get("destination") or item.get("destinationXdmPath")
    if not isinstance(destination, str) or not destination.strip():
        raise MappingSetError("MAPPING-SET", f"{where} has no destination")
    if source is None or (kind != "CONSTANT" and not str(source).strip()):
        raise MappingSetError("MAPPING-SET", f"{where} ({destination}) has no source")
    source = str(source)
    namespace = item.get("namespaceCode") if item.get("identity") is True else None
    return Rule(
        kind=kind,
        source=source,
        destination=destination,
        dest=parse_path(destination),
        source_path=parse_path(source) if kind == "ATTRIBUTE" else None,
        expression=compile_expression(source) if kind == "EXPRESSION" else None,
        namespace=str(namespace) if namespace else None,
        primary=bool(item.get("primaryIdentity") or item.get("primary")),
    )


def _source_value(rule: Rule, record: Mapping[str, Any]) -> Any:
    if rule.kind == "CONSTANT":
        return rule.source
    if rule.expression is not None:
        return rule.expression.evaluate(record)
    assert rule.source_path is not None
    return get_path(record, rule.source, rule.source_path)


def _is_null(value: Any) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, Fanout) and all(v is None or v == "" for v in value)


def _names(path: tuple[str | int, ...]) -> list[str]:
    return [p for p in path if isinstance(p, str)]


def _convert(
    value: Any,
    target: Mapping[str, Any] | None,
    where: str,
    validator: XdmValidator | None,
) -> Any:
    if target is None:
        return value
    if isinstance(value, Fanout) and target.get("type") != "array":
        # the array sits somewhere above the leaf: each element converts to the leaf's type
        return Fanout(None if _is_null(v) else _convert(v, target, where, validator) for v in value)
    kind = target.get("type")
    if kind == "array":
        items = target.get("items")
        item_schema = (
            validator.flat(items) if validator is not None and isinstance(items, Mapping) else None
        )
        values = list(value) if isinstance(value, list) else [value]
        return [_convert_scalar(v, item_schema, where) for v in values if not _is_null(v)]
    return _convert_scalar(value, target, where)


def _convert_scalar(value: Any, target: Mapping[str, Any] | None, where: str) -> Any:
    if target is None or value is None:
        return value
    kind = target.get("type")
    if kind is None:
        return value
    try:
        if kind == "string":
            return _to_string(value, target)
        if kind == "integer":
            return _to_int(value)
        if kind == "number":
            return _to_number(value)
        if kind == "boolean":
            return _to_bool(value)
        if kind == "object":
            return _to_object(value)
        if kind == "array":
            return value if isinstance(value, list) else [value]
    except (ValueError, TypeError, OverflowError) as exc:
        raise MappingError(
            "MAPPING-TYPE", f"cannot convert {value!r} to {_describe(target)} for {where}: {exc}"
        ) from exc
    return value


def _describe(target: Mapping[str, Any]) -> str:
    fmt = target.get("format")
    return f"{target.get('type')} ({fmt})" if fmt else str(target.get("type"))


def _to_string(value: Any, target: Mapping[str, Any]) -> str:
    if isinstance(value, Mapping | list):
        raise TypeError("an object or array is not a string")
    fmt = target.get("format")
    if fmt == "date-time":
        dt = to_datetime(value)
        assert dt is not None
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if fmt == "date":
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return value.strip()
        dt = to_datetime(value)
        assert dt is not None
        return dt.date().isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("has a fraction")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
        if not number.is_integer():
            raise ValueError("has a fraction")
        return int(number)
    raise TypeError(f"a {type(value).__name__} is not an integer")


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return number
    raise TypeError(f"a {type(value).__name__} is not a number")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("not true or false")


def _to_object(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            return parsed
    raise TypeError(f"a {type(value).__name__} is not an object")


def _identities(value: Any, primary: bool) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for v in values:
        if v is None or v == "":
            continue
        if isinstance(v, Mapping):
            out.append(dict(v))
        else:
            entry: dict[str, Any] = {"id": str(v)}
            if primary:
                entry["primary"] = True
            out.append(entry)
    return out


def _add_identity(out: dict[str, Any], namespace: str, value: Any, primary: bool) -> None:
    entries = out.setdefault("identityMap", {}).setdefault(namespace, [])
    for entry in _identities(value, primary):
        if entry not in entries:
            entries.append(entry)


def _write(out: dict[str, Any], dest: tuple[str | int, ...], value: Any, target: _Target) -> None:
    if isinstance(value, Fanout):
        split = _fan_point(out, dest, target)
        if split is None:
            _set(out, dest, [v for v in value if v is not None])
            return
        head, tail = dest[: split + 1], dest[split + 1 :]
        for i, v in enumerate(value):
            if v is not None:
                _set(out, (*head, i, *tail), v)
        return
    _set(out, dest, value)


def _fan_point(out: dict[str, Any], dest: tuple[str | int, ...], target: _Target) -> int | None:
    """Index of the destination segment that holds the array a fanned-out value spreads over."""
    node: Any = out
    for i, step in enumerate(dest[:-1]):
        if isinstance(step, int):
            return None  # an explicit index: the caller picked one element
        node = node.get(step) if isinstance(node, Mapping) else None
        if isinstance(node, list) or target.arrays[i]:
            return i
    if dest[0] == "identityMap" or len(dest) < 2 or target.leaf_array:
        return None
    return len(dest) - 2


def _set(out: dict[str, Any], dest: tuple[str | int, ...], value: Any) -> None:
    node: Any = out
    for step, nxt in itertools.pairwise(dest):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append(None)
            if not isinstance(node[step], dict | list):
                node[step] = empty
            node = node[step]
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = empty
            node = node[step]
    last = dest[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        node[last] = _merge(node[last], value)
    else:
        node[last] = _merge(node.get(last), value)


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, Mapping):
        merged = dict(old)
        for k, v in new.items():
            merged[k] = _merge(merged.get(k), v)
        return merged
    if isinstance(new, Mapping):
        return {k: _merge(None, v) for k, v in new.items()}
    return new


def _expand_dotted(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if _is_null(value):
            continue
        if isinstance(key, str) and "." in key:
            try:
                _set(out, parse_path(key), value)
                continue
            except MappingSetError:
                pass
        out[key] = _merge(out.get(key), value)
    return out
