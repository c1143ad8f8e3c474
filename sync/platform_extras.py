"""Platform calls `aep` does not offer yet: identity descriptors, mapping set update, batch contents.

They go through the client's one send path (`client.http`: headers, retries, redaction, capture),
so they behave like every other call; they belong in `aep.schemas` / `aep.mappings` and live here
only until the client grows them.
"""

from __future__ import annotations

from typing import Any

from aep.client import PlatformClient
from aep.mappings import MappingSet, with_tag

__all__ = ["batch_texts", "identity_descriptors", "put_mapping_set"]

_ACCEPT_DESCRIPTORS = "application/vnd.adobe.xdm+json"


def identity_descriptors(client: PlatformClient, schema_id: str) -> list[dict[str, Any]]:
    """The identity descriptors whose source schema is `schema_id`.

    `GET /tenant/descriptors` answers, depending on `Accept`, either a list of descriptor
    objects or an object grouping them by `@type`; both are read.
    """
    http = client.http
    response = http.request(
        "GET",
        client.schemas.url("/tenant/descriptors"),
        headers={"Accept": _ACCEPT_DESCRIPTORS},
    )
    body = http.json(response)
    items: list[Any]
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        items = [d for group in body.values() if isinstance(group, list) for d in group]
    else:
        raise http.format_error(response, "a list of descriptors was expected")
    return [
        d
        for d in items
        if isinstance(d, dict)
        and d.get("@type") == "xdm:descriptorIdentity"
        and d.get("xdm:sourceSchema") == schema_id
    ]


def put_mapping_set(
    client: PlatformClient, mapping_set_id: str, tag: str, body: dict[str, Any]
) -> MappingSet:
    """`PUT /mappingSets/{id}`: the set's mappings become `body`'s, as a new version.

    The lookup tag is kept in the first mapping's description (`aep.mappings.with_tag`), so the
    set is still found after the update. Sent once (a PUT of the same body is idempotent, but a
    second version would be made).
    """
    http = client.http
    response = http.request(
        "PUT", client.mappings.url(f"/mappingSets/{mapping_set_id}"), json=with_tag(body, tag)
    )
    data = http.json(response)
    if isinstance(data, dict) and "id" in data and "version" in data:
        return MappingSet.model_validate(data)
    return client.mappings.get_mapping_set(mapping_set_id)


EXPORT_BASE = "/data/foundation/export"


def _export_url(client: PlatformClient, href: str) -> str:
    if href.startswith(("http://", "https://")):
        return href
    gateway = client.settings.platform.gateway_url.rstrip("/")
    if href.startswith("/data/"):
        return gateway + href
    return gateway + EXPORT_BASE + (href if href.startswith("/") else "/" + href)


def _hrefs(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    out = []
    for entry in data if isinstance(data, list) else []:
        href = ((entry or {}).get("_links") or {}).get("self", {}).get("href")
        if isinstance(href, str):
            out.append(href)
    return out


def batch_texts(client: PlatformClient, batch_id: str, *, failed: bool = False) -> list[str]:
    """The contents of a batch's data files (or, with `failed`, its failed records), as text.

    Data Access: `GET /batches/{id}/files` -> each file's listing -> each entry's download
    (JSON lines); `GET /batches/{id}/failed` -> each entry's download.
    """
    http = client.http
    texts: list[str] = []
    if failed:
        listing = http.request("GET", _export_url(client, f"/batches/{batch_id}/failed"))
        downloads = _hrefs(http.json(listing))
    else:
        files = http.request("GET", _export_url(client, f"/batches/{batch_id}/files"))
        downloads = []
        for file_href in _hrefs(http.json(files)):
            listing = http.request("GET", _export_url(client, file_href))
            downloads.extend(_hrefs(http.json(listing)))
    for href in downloads:
        texts.append(http.request("GET", _export_url(client, href)).text)
    return texts
