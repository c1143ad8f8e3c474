"""Dotted field paths (`person.name.firstName`, `items[0].sku`): parse, read, write.

Reading a name through an array collects that name from every element (`items.sku` → one value
per item) and marks the result as a `Fanout`, so that writing it fans back out into an array of
objects on the destination side (`productListItems.SKU`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from emulator.runner.types import MappingSetError

__all__ = ["Fanout", "get_path", "parse_path"]

_SEGMENT: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class Fanout(list[Any]):
    """Values read through an array: one per element, written back element by element."""


def parse_path(text: str) -> tuple[str | int, ...]:
    """`a.b[0].c` → `("a", "b", 0, "c")`; a leading `xdm:` (Adobe's tables) is dropped.

    Raises:
        MappingSetError: the path is empty or malformed.
    """
    body = text.strip()
    if body.startswith("xdm:"):
        body = body[4:]
    parts: list[str | int] = []
    pos = 0
    while pos < len(body):
        if body[pos] == "." and parts:
            pos += 1
        m = _SEGMENT.match(body, pos)
        if m is None:
            raise MappingSetError("MAPPING-PATH", f"malformed field path {text!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise MappingSetError("MAPPING-PATH", f"empty field path {text!r}")
    return tuple(parts)


def get_path(record: Mapping[str, Any], text: str, path: tuple[str | int, ...]) -> Any:
    """The value at `path` in `record`, or None where any step is missing.

    A flat key equal to the whole dotted text wins (CSV headers such as `person.name`).
    """
    if text in record:
        return record[text]
    return _get(record, path)


def _get(node: Any, path: tuple[str | int, ...]) -> Any:
    for i, step in enumerate(path):
        if node is None:
            return None
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and -len(node) <= step < len(node) else None
        elif isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list):
            rest = path[i:]
            out = Fanout()
            for item in node:
                v = _get(item, rest)
                if isinstance(v, Fanout):
                    out.extend(v)
                else:
                    out.append(v)
            return out
        else:
            return None
    return node
