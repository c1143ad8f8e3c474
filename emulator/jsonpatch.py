"""RFC 6902 JSON Patch (add, replace, remove; op names case-insensitive, as Adobe accepts)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "apply_patch"]


class PatchError(ValueError):
    """The patch document is malformed, uses an unsupported op, or names a missing path."""

    def __init__(self, message: str, *, unsupported_op: bool = False) -> None:
        super().__init__(message)
        self.unsupported_op = unsupported_op


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"Path {path!r} must start with '/'.")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"Array index {token!r} is not a number.")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"Array index {idx} is out of range.")
    return idx


def apply_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply a JSON Patch to a copy of `doc`.

    Args:
        doc: the document.
        ops: the decoded patch body (a list of operation objects).

    Returns:
        The patched copy.

    Raises:
        PatchError: malformed patch, unsupported op (e.g. `move`), or a path that does not exist.
    """
    if not isinstance(ops, list) or not ops:
        raise PatchError("The body must be a non-empty JSON Patch array.")
    result = copy.deepcopy(doc)
    for number, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"Operation {number} must be an object with 'op' and 'path'.")
        name = op["op"].lower()
        if name not in ("add", "replace", "remove"):
            raise PatchError(f"Unsupported operation '{op['op']}'", unsupported_op=True)
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"Operation {number} has no 'path'.")
        tokens = _tokens(path)
        if not tokens:
            raise PatchError("Replacing the whole document is not supported.")
        if name != "remove" and "value" not in op:
            raise PatchError(f"Operation {number} ({name}) has no 'value'.")
        parent: Any = result
        for token in tokens[:-1]:
            if isinstance(parent, dict):
                if token not in parent:
                    if name == "add":
                        parent[token] = {}
                    else:
                        raise PatchError(f"Path {path!r} does not exist.")
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[_index(parent, token, allow_end=False)]
            else:
                raise PatchError(f"Path {path!r} does not exist.")
        last = tokens[-1]
        value = copy.deepcopy(op.get("value"))
        if isinstance(parent, dict):
            if name in ("replace", "remove") and last not in parent:
                raise PatchError(f"Path {path!r} does not exist.")
            if name == "remove":
                del parent[last]
            else:
                parent[last] = value
        elif isinstance(parent, list):
            if name == "add":
                parent.insert(_index(parent, last, allow_end=True), value)
            elif name == "replace":
                parent[_index(parent, last, allow_end=False)] = value
            else:
                del parent[_index(parent, last, allow_end=False)]
        else:
            raise PatchError(f"Path {path!r} does not exist.")
    return result
