"""Identifiers and timestamps in the forms Adobe uses: UUIDs, 24/32/64-hex ids, ULIDs, quoted etags, epoch ms."""

from __future__ import annotations

import secrets
import time
import uuid

__all__ = ["etag", "hex_id", "now_ms", "ulid", "uuid_id", "xaction_id"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def uuid_id() -> str:
    """A UUID, as Flow Service gives connections, flows and runs."""
    return str(uuid.uuid4())


def hex_id(length: int) -> str:
    """A lower-case hex id: 24 for Catalog objects, 32 for mapping sets, 64 for inlets."""
    return secrets.token_hex((length + 1) // 2)[:length]


def ulid() -> str:
    """A 26-character ULID, the form of Catalog batch ids (e.g. `01H8Y3...`)."""
    value = (now_ms() << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def etag() -> str:
    """A fresh etag with its literal double quotes, shaped like Adobe's."""
    raw = uuid.uuid4().hex
    return f'"{raw[:8]}-0000-0200-0000-{raw[8:20]}"'


def xaction_id(received_ms: int, seq: int = 0) -> str:
    """A DCS transaction id shaped like `1584479347507:2153:240`."""
    return f"{received_ms}:{secrets.randbelow(10000)}:{seq}"
