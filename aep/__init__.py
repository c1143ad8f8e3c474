"""The Platform client: IMS auth, one send path, typed errors, one module per API.

Public surface: `PlatformClient`, the error tree (`aep.errors`), `resource_name`,
`create_or_find`. See docs/client.md.
"""

from __future__ import annotations

from aep.client import PlatformClient
from aep.errors import (
    AEPError,
    AmbiguousMatch,
    HTTPStatusError,
    RequestError,
    TokenError,
)
from aep.lookup import CreateResult, create_or_find
from aep.names import description_tag, resource_name

__all__ = [
    "AEPError",
    "AmbiguousMatch",
    "CreateResult",
    "HTTPStatusError",
    "PlatformClient",
    "RequestError",
    "TokenError",
    "create_or_find",
    "description_tag",
    "resource_name",
]
