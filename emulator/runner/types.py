"""The run engine's boundary types: what EMU-CORE hands in, what it gets back (interfaces.md §2).

Also the engine's own exception tree::

    RunnerError                  base of everything the runner raises on purpose
    ├── MappingError             one record cannot be mapped (bad value, bad expression)
    │   └── MappingSetError      the mapping set itself is unusable (unknown function, bad path)
    └── SourceError              the source cannot be read at all (connect, auth, host key, 0-byte)
        └── UnknownResourceError a Stripe resource path the fixtures do not hold
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BATCH_FLOW_SPECS",
    "MappingError",
    "MappingSetError",
    "RowError",
    "RunInput",
    "RunOutput",
    "RunnerError",
    "SourceError",
    "UnknownResourceError",
]

#: Flow spec names whose runs this engine executes.
BATCH_FLOW_SPECS: Final = frozenset({"CloudStorageToAEP", "RestStorageToAEP"})


@dataclass
class RunInput:
    """Everything one dataflow run needs; built by EMU-CORE from its stored resources."""

    flow: dict[str, Any]
    """The stored flow as served by GET (spec shape)."""
    flow_spec_name: str
    """`CloudStorageToAEP` (SFTP) or `RestStorageToAEP` (Stripe)."""
    base_connection: dict[str, Any] | None
    """As stored, with unmasked `auth.params`."""
    source_connection: dict[str, Any]
    """`params.path` / `params.resourcePath`, `data.format`, `data.properties`."""
    target_connection: dict[str, Any]
    """`params.dataSetId`."""
    mapping_set: dict[str, Any] | None
    """As stored by Data Prep, either mapping format; None maps records as they are."""
    target_schema: dict[str, Any] | None
    """The XDM schema JSON of the target dataset, if known."""
    since_ms: int | None
    """Watermark: only files (SFTP) or objects (Stripe) newer than this, epoch ms."""
    known_hosts: Path | None
    """known_hosts file the SFTP server's host key must be in (never auto-added)."""
    stripe_fixtures: Path | None
    """Directory of `v1/<resource>.jsonl`; None uses the fixtures shipped in this package."""


@dataclass
class RowError:
    """One input record that did not land, with where it came from and why."""

    file: str | None
    line: int | None
    """1-based physical line in the file (a CSV header is line 1)."""
    code: str
    """e.g. `CSV-FIELD-COUNT`, `JSON-SYNTAX`, `MAPPING-TYPE`, `SCHEMA-REQUIRED`."""
    message: str
    raw: str | None


@dataclass
class RunOutput:
    """What one run produced; `input_count == len(records) + len(errors)` always."""

    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    input_count: int = 0
    files: list[str] = field(default_factory=list)
    watermark_ms: int | None = None
    failure: str | None = None
    """Whole-run failure (connect error, host key, auth, 0-byte file): the run failed."""


class RunnerError(Exception):
    """Base of every error the runner raises on purpose."""


class MappingError(RunnerError):
    """One record cannot be mapped: a value does not convert, an expression fails on it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MappingSetError(MappingError):
    """The mapping set itself is unusable: unknown function, expression syntax, empty path."""


class SourceError(RunnerError):
    """The source cannot be read at all: the whole run fails with this message."""


class UnknownResourceError(SourceError, LookupError):
    """A Stripe resource path that neither the fixtures nor the defaults hold."""
