"""Render the effective settings for people, with every secret masked."""

from __future__ import annotations

import json

from config.settings import Settings

__all__ = ["settings_as_json"]

_PYDANTIC_MASK = "**********"


def _normalise(node: object) -> object:
    if isinstance(node, dict):
        return {k: _normalise(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    return "***" if node == _PYDANTIC_MASK else node


def settings_as_json(settings: Settings) -> str:
    """The settings as indented JSON; every set SecretStr is shown as `***`."""
    return json.dumps(_normalise(json.loads(settings.model_dump_json())), indent=2, sort_keys=True)
