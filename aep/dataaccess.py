"""Data Access API (`/data/foundation/export`): what a batch holds, to read what landed.

Listings link to their files by `_links.self.href`; every link is followed on the gateway only
(`Service._next_url`), since the request carries the bearer token and api key.
"""

from __future__ import annotations

from typing import Any

from aep._api import Service

__all__ = ["DataAccess"]

BASE = "/data/foundation/export"


def _hrefs(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    out: list[str] = []
    for entry in data if isinstance(data, list) else []:
        links = (entry or {}).get("_links") if isinstance(entry, dict) else None
        href = ((links or {}).get("self") or {}).get("href")
        if isinstance(href, str):
            out.append(href)
    return out


class DataAccess(Service):
    """Data Access API (`/data/foundation/export`)."""

    base = BASE

    def _get_json(self, href: str) -> Any:
        return self.http.json(self.http.request("GET", self._next_url(href)))

    def batch_texts(self, batch_id: str, *, failed: bool = False) -> list[str]:
        """The contents of a batch's data files (with `failed`, its failed records), as text.

        `GET /batches/{id}/files` -> each file's listing -> each entry's download (JSON lines);
        `GET /batches/{id}/failed` -> each entry's download.
        """
        if failed:
            downloads = _hrefs(self._get_json(f"/batches/{batch_id}/failed"))
        else:
            downloads = []
            for file_href in _hrefs(self._get_json(f"/batches/{batch_id}/files")):
                downloads.extend(_hrefs(self._get_json(file_href)))
        return [self.http.request("GET", self._next_url(href)).text for href in downloads]
