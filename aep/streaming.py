"""Streaming ingestion (DCS inlets): one message, a batch (always 207), sync validation.

Messages go to `{inlet_url}/collection/{inletId}` and `/collection/batch/{inletId}`. A message
is never re-sent after an ambiguous failure (it would land twice); a 429 or a connect error is
retried by the send path because nothing was accepted. Unauthenticated inlets get no Platform
headers; authenticated ones get the four.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from aep import deviations
from aep._api import Model, Service

__all__ = ["BatchReceipt", "Receipt", "Streaming", "inlet_id_of"]


class Receipt(Model):
    """DCS's answer to one message."""

    inletId: str | None = None
    xactionId: str | None = None
    receivedTimeMs: int | None = None
    syncValidation: dict[str, Any] | None = None


class BatchReceipt(Model):
    """DCS's 207 answer to a batch: one response per message, in order."""

    inletId: str | None = None
    batchId: str | None = None
    receivedTimeMs: int | None = None
    responses: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def failed(self) -> list[int]:
        """Indexes of the messages DCS refused (the ones to fix and re-send)."""
        return [i for i, r in enumerate(self.responses) if "statusCode" in r]


def inlet_id_of(inlet: str) -> str:
    """The inlet id from an id or a full `inletUrl` (`.../collection/<id>`)."""
    return inlet.rstrip("/").rsplit("/", 1)[-1]


class Streaming(Service):
    """DCS streaming inlets (on the inlet host, not the gateway)."""

    def url(self, path: str) -> str:
        """`path` on the inlet host."""
        return self.http.config.inlet_url.rstrip("/") + path

    def send(
        self,
        inlet: str,
        message: dict[str, Any],
        *,
        sync_validation: bool = False,
        flow_id: str | None = None,
        authenticated: bool = False,
    ) -> Receipt:
        """POST one message; with `sync_validation` an invalid one raises `BadRequestError`."""
        params = deviations.sync_validation_param() if sync_validation else None
        headers = {"x-adobe-flow-id": flow_id} if flow_id else None
        response = self.http.request(
            "POST",
            self.url(f"/collection/{inlet_id_of(inlet)}"),
            json=message,
            params=params,
            headers=headers,
            platform=authenticated,
        )
        return self._parse(response, Receipt, self.http.json(response))

    def send_batch(
        self, inlet: str, messages: list[dict[str, Any]], *, authenticated: bool = False
    ) -> BatchReceipt:
        """POST several messages at once; DCS answers 207 with a result per message."""
        response = self.http.request(
            "POST",
            self.url(f"/collection/batch/{inlet_id_of(inlet)}"),
            json={"messages": messages},
            platform=authenticated,
        )
        receipt = self._parse(response, BatchReceipt, self.http.json(response))
        if len(receipt.responses) != len(messages):
            raise self.http.format_error(
                response, f"{len(receipt.responses)} responses for {len(messages)} messages"
            )
        return receipt
