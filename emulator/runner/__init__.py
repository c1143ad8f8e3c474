"""The dataflow run engine of the emulator (interfaces.md §2): what a batch run does.

`execute_run` pulls a CloudStorageToAEP flow's files over SFTP (paramiko, host key verified)
or a RestStorageToAEP flow's Stripe objects from fixtures, parses them (`formats`), applies the
Data Prep mapping set (`mapping`, `expressions`), validates each XDM record (`xdm`) and returns
records, row errors and counts. EMU-CORE turns that into runs, batches and row errors; it also
uses `map_record` and `validate_xdm` for streaming inlets, and `explore_sftp` and
`stripe_resource_schema` for explore. Nothing here imports `aep/`, `config/` or `backfill/`.
"""

from emulator.runner.explore import explore_sftp, inspect_sftp_file
from emulator.runner.mapping import map_record, validate_mappings
from emulator.runner.run import execute_run
from emulator.runner.stripe_source import stripe_resource_schema
from emulator.runner.types import (
    MappingError,
    MappingSetError,
    RowError,
    RunInput,
    RunnerError,
    RunOutput,
    SourceError,
    UnknownResourceError,
)
from emulator.runner.xdm import validate_xdm

__all__ = [
    "MappingError",
    "MappingSetError",
    "RowError",
    "RunInput",
    "RunOutput",
    "RunnerError",
    "SourceError",
    "UnknownResourceError",
    "execute_run",
    "explore_sftp",
    "inspect_sftp_file",
    "map_record",
    "stripe_resource_schema",
    "validate_mappings",
    "validate_xdm",
]
