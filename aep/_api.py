"""What the per-API modules share: the service base, `_links.next` paging, model parsing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from aep.http import Http

__all__ = ["Model", "Service"]

M = TypeVar("M", bound=BaseModel)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Identified = TypeVar("Identified", bound=_HasId)

_MAX_PAGES = 10_000  # a server that keeps answering the same page must not loop forever


class Model(BaseModel):
    """Base of the models the client reads: unknown fields kept, names as Adobe spells them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Service:
    """One Platform API under one base path (e.g. `/data/foundation/flowservice`)."""

    base: str = ""

    def __init__(self, http: Http) -> None:
        self.http = http

    def url(self, path: str) -> str:
        """The full URL of `path` under this API."""
        return self.http.url(self.base, path)

    def _parse(self, response: httpx.Response, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
            raise self.http.format_error(
                response, f"{model.__name__} expected; bad fields: {fields}"
            ) from None

    def _next_url(self, href: str) -> str:
        """Where `_links.next.href` points, always on the gateway.

        An absolute link to another host keeps only its path and query: the request carries
        the bearer token and api key, which must never go to a host a response body names.
        """
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            gateway = urlsplit(self.http.config.gateway_url)
            if (parts.scheme, parts.netloc) == (gateway.scheme, gateway.netloc):
                return href
            href = urlunsplit(("", "", parts.path, parts.query, ""))
        if href.startswith(self.base + "/") or href.startswith("/data/"):
            return self.http.config.gateway_url.rstrip("/") + href
        return self.url(href if href.startswith("/") else "/" + href)

    def _pages(
        self,
        path: str,
        *,
        params: list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        items_key: str = "items",
    ) -> Iterator[tuple[httpx.Response, list[Any]]]:
        """Yield each page's items, following `_links.next.href` until there is none."""
        url: str | None = self.url(path)
        query: list[tuple[str, Any]] | None = params
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            response = self.http.request("GET", url, params=query, headers=headers)
            body = self.http.json(response)
            if not isinstance(body, dict):
                raise self.http.format_error(response, "a JSON object with a list was expected")
            items = body.get(items_key) or []
            if not isinstance(items, list):
                raise self.http.format_error(response, f"`{items_key}` is not a list")
            yield response, items
            raw_links = body.get("_links")
            links: dict[str, Any] = raw_links if isinstance(raw_links, dict) else {}
            raw_next = links.get("next")
            href = raw_next.get("href") if isinstance(raw_next, dict) else None
            if not href or not items or href in seen:
                return
            seen.add(href)
            url, query = self._next_url(str(href)), None

    def _start_pages(
        self,
        path: str,
        params: list[tuple[str, Any]],
        items: Callable[[httpx.Response], list[Identified]],
        *,
        limit: int,
    ) -> Iterator[Identified]:
        """Yield every item of an offset-paged list (`limit` + `start`: Catalog, Data Prep).

        Stops at the first page that brings nothing new, so a server that ignores `start`
        and keeps answering the first page ends the listing instead of looping.
        """
        start = 0
        seen: set[str] = set()
        while True:
            response = self.http.request(
                "GET", self.url(path), params=[*params, ("limit", limit), ("start", start)]
            )
            page = items(response)
            fresh = [item for item in page if item.id not in seen]
            if not fresh:
                return
            seen.update(item.id for item in fresh)
            yield from fresh
            start += len(page)
