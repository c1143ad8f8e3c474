"""One dataflow run, end to end: read the source, map each record, validate it, count.

`execute_run` never raises: a source that cannot be read at all (connect refused, failed
authentication, host key mismatch or unknown, 0-byte file, unusable mapping set) sets
`RunOutput.failure`, and then nothing is ingested (`records` and `errors` empty, watermark
unchanged) so the next run reads the same files again. Otherwise every input record ends up in
`records` or in `errors`, so `input_count == len(records) + len(errors)`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from emulator.runner.formats import InputRecord, ParsedFile, format_options, parse_file
from emulator.runner.mapping import BoundMapping, compile_mapping_set
from emulator.runner.sftp_source import SftpAuth, list_new_files, open_sftp, read_file
from emulator.runner.stripe_source import read_stripe
from emulator.runner.types import (
    MappingError,
    MappingSetError,
    RowError,
    RunInput,
    RunOutput,
    SourceError,
)
from emulator.runner.xdm import XdmValidator

__all__ = ["execute_run"]

_log = logging.getLogger("emulator.runner")
_MAX_PROBLEMS_SHOWN = 5


def execute_run(inp: RunInput) -> RunOutput:
    """Run a CloudStorageToAEP (SFTP) or RestStorageToAEP (Stripe) flow once.

    Args:
        inp: the flow, its connections, mapping set, target schema and watermark.

    Returns:
        The mapped records, one row error per failed input record, the files read, the new
        watermark, or `failure` when the run as a whole failed.
    """
    out = RunOutput(watermark_ms=inp.since_ms)
    try:
        mapping = compile_mapping_set(inp.mapping_set).bind(inp.target_schema)
        validator = mapping.validator
        if inp.flow_spec_name == "CloudStorageToAEP":
            sources = _sftp_files(inp, out)
        elif inp.flow_spec_name == "RestStorageToAEP":
            sources = _stripe_objects(inp, out)
        else:
            raise SourceError(
                f"flow spec {inp.flow_spec_name!r} has no batch runs in the emulator "
                "(CloudStorageToAEP and RestStorageToAEP do)"
            )
        for parsed in sources:
            first = len(out.errors)
            out.errors.extend(parsed.errors)
            for record in parsed.records:
                _map_one(mapping, validator, record, out)
            # one file's errors in line order, whichever step found them
            out.errors[first:] = sorted(out.errors[first:], key=lambda e: e.line or 0)
    except MappingSetError as exc:
        return _failed(out, f"the flow's mapping set cannot be applied: {exc.message}")
    except SourceError as exc:
        return _failed(out, str(exc))
    except Exception as exc:  # the engine must not take the scheduler down with it
        _log.exception("run of flow %s crashed", inp.flow.get("id"))
        return _failed(out, f"internal emulator error: {type(exc).__name__}: {exc}")
    out.input_count = len(out.records) + len(out.errors)
    return out


def _failed(out: RunOutput, message: str) -> RunOutput:
    return RunOutput(
        records=[],
        errors=[],
        input_count=0,
        files=out.files,
        watermark_ms=None,
        failure=message,
    )


def _map_one(
    mapping: BoundMapping,
    validator: XdmValidator | None,
    record: InputRecord,
    out: RunOutput,
) -> None:
    try:
        mapped = mapping.apply(record.values)
    except MappingSetError:
        raise
    except MappingError as exc:
        out.errors.append(RowError(record.file, record.line, exc.code, exc.message, record.raw))
        return
    except RecursionError:
        out.errors.append(
            RowError(record.file, record.line, "MAPPING-DEPTH", "nested too deeply", record.raw)
        )
        return
    problems = validator.check(mapped) if validator is not None else []
    if problems:
        shown = "; ".join(str(p) for p in problems[:_MAX_PROBLEMS_SHOWN])
        more = len(problems) - _MAX_PROBLEMS_SHOWN
        message = shown + (f" (and {more} more)" if more > 0 else "")
        out.errors.append(RowError(record.file, record.line, problems[0].code, message, record.raw))
        return
    out.records.append(mapped)


def _sftp_files(inp: RunInput, out: RunOutput) -> Iterator[ParsedFile]:
    """Parsed new files of the source path (the generator holds the SFTP session open)."""
    params = inp.source_connection.get("params") or {}
    path = params.get("path") or params.get("folderPath")
    if not path:
        raise SourceError("the SFTP source connection has no params.path")
    recursive = str(params.get("recursive", False)).lower() == "true"
    opts = format_options(inp.source_connection)
    auth = SftpAuth.from_base_connection(inp.base_connection)
    with open_sftp(auth, inp.known_hosts) as sftp:
        files, newest = list_new_files(
            sftp, auth, str(path), recursive=recursive, since_ms=inp.since_ms
        )
        for remote in files:
            out.files.append(remote.path)
            yield parse_file(read_file(sftp, remote), remote.path, opts)
    if newest is not None:
        out.watermark_ms = newest if inp.since_ms is None else max(newest, inp.since_ms)


def _stripe_objects(inp: RunInput, out: RunOutput) -> Iterator[ParsedFile]:
    batch = read_stripe(inp.stripe_fixtures, inp.source_connection, inp.since_ms)
    out.files.append(batch.file)
    out.watermark_ms = batch.watermark_ms
    yield ParsedFile(records=batch.records, errors=batch.errors)
