"""Redaction: what must never leave the process in a log line, an error or a support bundle.

Two rules, both always applied:

- by field: every value under `auth.params` (at any depth, and the value of a JSON Patch
  operation on `/auth/...`), and any field whose name is a known
  secret (`password`, `privateKeyContent`, `passPhrase`, `accessToken`, `clientSecret`,
  `client_secret`, `access_token`, ...), and the `Authorization` header;
- by value: every configured secret (and its base64 form) wherever it appears in text.

Matching values alone would miss a base64-encoded private key whose PEM is configured, and
matching fields alone would miss a secret echoed in a message; hence both.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "SECRET_FIELDS", "SENSITIVE_HEADERS", "Redactor"]

MASK = "***"

SECRET_FIELDS = frozenset(
    name.lower()
    for name in (
        "password",
        "privateKeyContent",
        "privateKey",
        "passPhrase",
        "passphrase",
        "accessToken",
        "access_token",
        "refreshToken",
        "refresh_token",
        "clientSecret",
        "client_secret",
        "secret",
        "apiKey",
        "token",
        "authorization",
    )
)
"""Field names whose value is always masked (compared case-insensitively)."""

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Headers whose value is always masked."""

_MIN_SECRET_LEN = 4  # shorter values would mask ordinary text everywhere


def _is_auth_patch(node: dict[str, Any]) -> bool:
    """Whether `node` is a JSON Patch operation writing under `/auth` (e.g. `/auth/params`)."""
    path = node.get("path")
    return (
        "op" in node
        and "value" in node
        and isinstance(path, str)
        and (path == "/auth" or path.startswith("/auth/"))
    )


class Redactor:
    """Masks secrets by field and by value.

    Args:
        secrets: the configured secret values (client secret, SFTP password, private key, ...).

    Example:
        >>> r = Redactor(["s3cr3t-value"])
        >>> r.text("token=s3cr3t-value")
        'token=***'
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Also mask `secret` (and its base64 and stripped forms) from now on."""
        if not secret:
            return
        forms = {secret, secret.strip()}
        raw = secret.encode("utf-8")
        forms.add(base64.b64encode(raw).decode("ascii"))
        forms.add(base64.urlsafe_b64encode(raw).decode("ascii"))
        # a multi-line secret (a PEM key) may appear line by line or with escaped newlines
        if "\n" in secret:
            forms.add(secret.replace("\n", "\\n"))
            forms.update(line.strip() for line in secret.splitlines() if "-----" not in line)
        with self._lock:
            new = {f for f in forms if len(f) >= _MIN_SECRET_LEN} - self._values
            if not new:
                return
            self._values.update(new)
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def text(self, value: str) -> str:
        """`value` with every configured secret replaced by `***`."""
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a dict with sensitive ones masked."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        return {k: (MASK if k.lower() in SENSITIVE_HEADERS else self.text(v)) for k, v in items}

    def json(self, node: Any, *, learn: bool = False) -> Any:
        """A copy of a JSON value with secret fields and secret values masked.

        Args:
            node: the JSON value.
            learn: also mask, from now on, the values of secret-named fields found here
                (for outgoing bodies: a server that echoes the password back in an error
                message must not leak it either).
        """
        if isinstance(node, dict):
            if _is_auth_patch(node):
                return self._auth_patch(node, learn=learn)
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = str(key)
                if name.lower() in SECRET_FIELDS:
                    out[name] = self._mask_all(value, learn=learn)
                elif name == "auth" and isinstance(value, dict):
                    out[name] = {
                        k: (self._mask_all(v) if k == "params" else self.json(v, learn=learn))
                        for k, v in value.items()
                    }
                    params = value.get("params")
                    if learn and isinstance(params, dict):
                        self.json(params, learn=True)  # learn the secret-named ones
                else:
                    out[name] = self.json(value, learn=learn)
            return out
        if isinstance(node, list):
            return [self.json(v, learn=learn) for v in node]
        if isinstance(node, str):
            return self.text(node)
        return node

    def _auth_patch(self, op: dict[str, Any], *, learn: bool) -> dict[str, Any]:
        """A JSON Patch operation on `/auth...`: its value is `auth.params` by another route."""
        path = str(op["path"])
        out = {str(k): self.json(v, learn=learn) for k, v in op.items() if k != "value"}
        out["value"] = self._mask_all(op["value"])
        if learn:  # learn the secret-named ones, as from a create body
            self.json({path.rsplit("/", 1)[-1]: op["value"]}, learn=True)
        return out

    def _mask_all(self, node: Any, *, learn: bool = False) -> Any:
        """Mask every leaf of `node`, keeping its keys (so a bundle still shows the shape)."""
        if isinstance(node, dict):
            return {str(k): self._mask_all(v, learn=learn) for k, v in node.items()}
        if isinstance(node, list):
            return [self._mask_all(v, learn=learn) for v in node]
        if learn and isinstance(node, str):
            self.add(node)
        return None if node is None else MASK

    def form(self, fields: Mapping[str, str]) -> dict[str, str]:
        """A form body (IMS token request) with secret fields masked."""
        return {
            k: (MASK if k.lower() in SECRET_FIELDS else self.text(v)) for k, v in fields.items()
        }
