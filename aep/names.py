"""Deterministic resource names: a fixed prefix plus the configuration key.

Every resource the tool creates is named `<prefix>-<key>` (e.g. `aep-bridge-stripe-charges`),
so it can be found again by name after a crash or an ambiguous create. Mapping sets have no
usable name, so they carry a description tag `<prefix>:<key>` instead (see `aep.mappings`).
"""

from __future__ import annotations

import re

__all__ = ["NAME_PATTERN", "description_tag", "resource_name"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""What a prefix and a key may contain: safe in Flow Service `property=name==` filters,
Catalog `name=` queries and Schema Registry titles."""


def _check(part: str, what: str) -> str:
    if not NAME_PATTERN.fullmatch(part):
        raise ValueError(
            f"{what} {part!r} may only contain letters, digits, '.', '_' and '-' "
            "and must start with a letter or digit"
        )
    return part


def resource_name(prefix: str, key: str) -> str:
    """The name of the resource configured under `key`.

    Example:
        >>> resource_name("aep-bridge", "stripe.charges")
        'aep-bridge-stripe.charges'

    Raises:
        ValueError: prefix or key holds characters a name filter could misread.
    """
    return f"{_check(prefix, 'prefix')}-{_check(key, 'configuration key')}"


def description_tag(prefix: str, key: str) -> str:
    """The tag written into the description of resources that cannot be found by name."""
    return f"{_check(prefix, 'prefix')}:{_check(key, 'configuration key')}"
