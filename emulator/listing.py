"""Flow Service listing: `property=` filters, `orderby`, `limit` + continuationToken, `count`.

Filter grammar (aep-api.md §2.7): `property=<path><op><v1>[,<v2>...]` with op in
`== != < <= > >=`; commas are OR, repeated `property` parameters are AND; `name[]` walks an
array, dots walk nested objects; values may be double-quoted.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from emulator.errors import FlowError

__all__ = ["Filter", "list_response", "parse_filter"]

_OPS = ("==", "!=", "<=", ">=", "<", ">")
_PATH = re.compile(r"^[A-Za-z_@$][\w@$:-]*(\[\])?(\.[A-Za-z_@$][\w@$:-]*(\[\])?)*$")


@dataclass(frozen=True)
class Filter:
    """One `property=` condition."""

    path: list[tuple[str, bool]]  # (key, walk array)
    op: str
    values: tuple[str, ...]

    def matches(self, item: dict[str, Any]) -> bool:
        """True if the item satisfies the condition."""
        found = _resolve(item, self.path)
        if self.op == "!=":
            return all(not _equal(v, w) for v in found for w in self.values)
        return any(_compare(v, self.op, w) for v in found for w in self.values)


def parse_filter(text: str) -> Filter:
    """Parse one `property` value.

    Raises:
        FlowError: 1440-400 when the expression is malformed.
    """
    positions = [(text.find(op), op) for op in _OPS if text.find(op) > 0]
    if not positions:
        raise FlowError("1440", f"Invalid filter expression '{text}': no comparison operator.")
    start = min(p for p, _ in positions)
    op = max((o for p, o in positions if p == start), key=len)
    path_text, raw = text[:start].strip(), text[start + len(op) :]
    if not _PATH.match(path_text):
        raise FlowError("1441", f"Invalid property path '{path_text}' in filter '{text}'.")
    values = tuple(_unquote(v.strip()) for v in raw.split(","))
    if not raw or any(v == "" for v in values):
        raise FlowError("1442", f"Missing value in filter expression '{text}'.")
    path = [(seg.removesuffix("[]"), seg.endswith("[]")) for seg in path_text.split(".")]
    return Filter(path=path, op=op, values=values)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _resolve(item: Any, path: list[tuple[str, bool]]) -> list[Any]:
    current = [item]
    for key, walk in path:
        nxt: list[Any] = []
        for node in current:
            if isinstance(node, dict) and key in node:
                value = node[key]
                if walk:
                    if isinstance(value, list):
                        nxt.extend(value)
                else:
                    nxt.append(value)
        current = nxt
    return current


def _typed(stored: Any, text: str) -> Any:
    if isinstance(stored, bool):
        return text.lower() == "true"
    if isinstance(stored, (int, float)):
        try:
            return float(text)
        except ValueError:
            return None
    return text


def _equal(stored: Any, text: str) -> bool:
    if isinstance(stored, (dict, list)):
        return False
    if stored is None:
        return text == "null"
    expected = (
        float(stored)
        if isinstance(stored, (int, float)) and not isinstance(stored, bool)
        else stored
    )
    return bool(_typed(stored, text) == expected)


def _compare(stored: Any, op: str, text: str) -> bool:
    if op == "==":
        return _equal(stored, text)
    if stored is None or isinstance(stored, (dict, list, bool)):
        return False
    left: Any = stored
    right: Any = _typed(stored, text)
    if right is None:
        return False
    left = float(left) if isinstance(left, (int, float)) else str(left)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[op](left, right)


def _order(items: list[dict[str, Any]], orderby: str) -> list[dict[str, Any]]:
    spec = orderby.strip()
    descending = spec.startswith("-")
    field = spec.lstrip("+-").strip()
    if not field or not _PATH.match(field) or "[]" in field:
        raise FlowError("1432", f"Invalid orderby expression '{orderby}'.")
    path = [(seg, False) for seg in field.split(".")]

    def key(item: dict[str, Any]) -> tuple[int, Any]:
        found = _resolve(item, path)
        if not found or found[0] is None or isinstance(found[0], (dict, list)):
            return (1, "")
        value = found[0]
        return (
            0,
            (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value)),
        )

    present = [i for i in items if key(i)[0] == 0]
    missing = [i for i in items if key(i)[0] == 1]
    present.sort(key=key, reverse=descending)
    return present + missing


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise FlowError("1443", f"Invalid continuationToken '{token}'.") from None
    return offset


def list_response(items: list[dict[str, Any]], query: QueryParams, path: str) -> dict[str, Any]:
    """Filter, order and page `items` as a Flow Service list answers.

    Args:
        items: every item of the collection, as served.
        query: the request's query parameters.
        path: the collection's path relative to the service base (e.g. "/flows"), for links.

    Raises:
        FlowError: bad filter (144x), bad orderby (1432), `count` with `limit` (1401).
    """
    filters = [parse_filter(p) for p in query.getlist("property")]
    selected = [i for i in items if all(f.matches(i) for f in filters)]
    if "orderby" in query:
        selected = _order(selected, query["orderby"])
    count = query.get("count", "").lower() == "true"
    if count and "limit" in query:
        raise FlowError("1401", "The parameters limit and count cannot be used together.")
    if count:
        return {"count": len(selected)}
    offset = _offset(query["continuationToken"]) if "continuationToken" in query else 0
    if "limit" in query:
        try:
            limit = int(query["limit"])
            if limit < 1:
                raise ValueError(limit)
        except ValueError:
            raise FlowError("1444", f"Invalid limit '{query['limit']}'.") from None
    else:
        limit = len(selected) or 1
    page = selected[offset : offset + limit]
    body: dict[str, Any] = {"items": page}
    if offset + limit < len(selected):
        params = [(k, v) for k, v in query.multi_items() if k != "continuationToken"]
        params.append(("continuationToken", _token(offset + limit)))
        body["_links"] = {"next": {"href": f"{path}?{urlencode(params)}"}}
    return body
