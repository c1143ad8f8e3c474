"""SFTP runs against a real OpenSSH sshd: what is read, what is refused, and the counts."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.runner import (
    RunInput,
    RunOutput,
    SourceError,
    execute_run,
    explore_sftp,
    inspect_sftp_file,
    sftp_source,
)
from tests.support.sshd import Sshd, free_port, keygen, start_sshd

pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def rsa_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """One sshd for the module whose client key is RSA PEM, the form AEP's SFTP source takes."""
    server = start_sshd(tmp_path_factory.mktemp("runner") / "sshd", client_key_type="rsa")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def folder(rsa_sshd: Sshd, request: pytest.FixtureRequest) -> Path:
    """A landing sub-folder of this test's own."""
    path = rsa_sshd.landing / request.node.name.replace("[", "_").replace("]", "")
    path.mkdir()
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _base(server: Sshd, **params: object) -> dict:
    auth = {
        "host": server.host,
        "port": server.port,
        "userName": server.user,
        "privateKeyContent": _b64(server.client_key),
    }
    auth.update(params)
    return {"auth": {"specName": "SSH PublicKey Authentication for sftp", "params": auth}}


def _run(
    server: Sshd,
    path: str,
    *,
    fmt: str = "delimited",
    properties: dict | None = None,
    mapping_set: dict | None = None,
    schema: dict | None = None,
    since_ms: int | None = None,
    base: dict | None = None,
    known_hosts: Path | str | None = "server",
    recursive: bool = False,
) -> RunOutput:
    out = execute_run(
        RunInput(
            flow={"id": "flow-1"},
            flow_spec_name="CloudStorageToAEP",
            base_connection=base or _base(server),
            source_connection={
                "data": {"format": fmt, "properties": properties or {}},
                "params": {"path": path, "recursive": recursive},
            },
            target_connection={"params": {"dataSetId": "ds"}},
            mapping_set=mapping_set,
            target_schema=schema,
            since_ms=since_ms,
            known_hosts=server.known_hosts if known_hosts == "server" else known_hosts,
            stripe_fixtures=None,
        )
    )
    assert out.input_count == len(out.records) + len(out.errors)
    return out


LOYALTY_MAPPING = {
    "mappings": [
        {"sourceType": "ATTRIBUTE", "source": "email", "destination": "personalEmail.address"},
        {"sourceType": "ATTRIBUTE", "source": "points", "destination": "_acme.loyalty.points"},
        {"sourceType": "ATTRIBUTE", "source": "tier", "destination": "_acme.loyalty.tier"},
    ]
}
LOYALTY_SCHEMA = {
    "type": "object",
    "properties": {
        "personalEmail": {"type": "object", "properties": {"address": {"type": "string"}}},
        "_acme": {
            "type": "object",
            "properties": {
                "loyalty": {
                    "type": "object",
                    "properties": {"points": {"type": "integer"}, "tier": {"type": "string"}},
                    "required": ["tier"],
                }
            },
        },
    },
}
ROWS = [f"m{i}@example.com,{i * 10},{'gold' if i % 2 else 'silver'}" for i in range(1, 8)]
CSV = "email,points,tier\n" + "\n".join(ROWS) + "\n"


def test_csv_run_counts_equal_the_csv_rows(rsa_sshd: Sshd, folder: Path):
    (folder / "loyalty.csv").write_text(CSV)
    out = _run(
        rsa_sshd, str(folder / "loyalty.csv"), mapping_set=LOYALTY_MAPPING, schema=LOYALTY_SCHEMA
    )
    assert out.failure is None
    assert (out.input_count, len(out.records), out.errors) == (len(ROWS), len(ROWS), [])
    assert out.records[0] == {
        "personalEmail": {"address": "m1@example.com"},
        "_acme": {"loyalty": {"points": 10, "tier": "gold"}},
    }
    assert out.files == [str(folder / "loyalty.csv")]
    assert out.watermark_ms == int((folder / "loyalty.csv").stat().st_mtime) * 1000


def test_malformed_rows_are_counted_as_failed_with_their_lines(rsa_sshd: Sshd, folder: Path):
    lines = [
        "email,points,tier",
        "a@x.io,1,gold",
        "c@x.io,lots,gold",
        "b@x.io,2",
        "d@x.io,4,",
        "e@x.io,5,gold",
    ]
    (folder / "bad.csv").write_text("\n".join(lines) + "\n")
    out = _run(
        rsa_sshd, str(folder / "bad.csv"), mapping_set=LOYALTY_MAPPING, schema=LOYALTY_SCHEMA
    )
    assert out.failure is None
    assert out.input_count == 5
    assert len(out.records) == 2
    assert [(e.file, e.line, e.code, e.raw) for e in out.errors] == [
        (str(folder / "bad.csv"), 3, "MAPPING-TYPE", "c@x.io,lots,gold"),
        (str(folder / "bad.csv"), 4, "CSV-FIELD-COUNT", "b@x.io,2"),
        (str(folder / "bad.csv"), 5, "SCHEMA-REQUIRED", "d@x.io,4,"),
    ]
    assert "_acme.loyalty.tier" in out.errors[2].message


def test_gzip_glob_relative_to_the_session_folder(rsa_sshd: Sshd, folder: Path):
    (folder / "part-1.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    (folder / "part-2.csv.gz").write_bytes(gzip.compress(b"email,points,tier\nz@x.io,1,gold\n"))
    (folder / "notes.txt").write_text("not data")
    out = _run(rsa_sshd, f"{folder.name}/part-*.csv.gz", properties={"compressionType": "gzip"})
    assert out.failure is None
    assert out.files == [f"{folder.name}/part-1.csv.gz", f"{folder.name}/part-2.csv.gz"]
    assert out.input_count == len(ROWS) + 1
    assert out.records[-1] == {"email": "z@x.io", "points": "1", "tier": "gold"}


def test_json_lines_with_a_bad_line(rsa_sshd: Sshd, folder: Path):
    (folder / "bills.json").write_text(
        '{"_id": "T1", "commerce": {"order": {"priceTotal": 90}}}\n{"_id": "T2",\n{"_id": "T3"}\n'
    )
    out = _run(rsa_sshd, str(folder), fmt="json")
    assert [r["_id"] for r in out.records] == ["T1", "T3"]
    assert [(e.line, e.code) for e in out.errors] == [(2, "JSON-SYNTAX")]


def test_latin1_semicolon_file(rsa_sshd: Sshd, folder: Path):
    (folder / "stores.csv").write_bytes("code;city\nZRH;Zürich\nORL;Orléans\n".encode("latin-1"))
    out = _run(
        rsa_sshd,
        str(folder / "stores.csv"),
        properties={"columnDelimiter": ";", "encoding": "ISO-8859-1"},
    )
    assert [r["city"] for r in out.records] == ["Zürich", "Orléans"]


def test_only_files_newer_than_the_watermark_are_read(rsa_sshd: Sshd, folder: Path):
    old, new = folder / "old.csv", folder / "new.csv"
    old.write_text("email,points,tier\no@x.io,1,gold\n")
    new.write_text("email,points,tier\nn@x.io,2,gold\nm@x.io,3,gold\n")
    os.utime(old, (1_700_000_000, 1_700_000_000))
    os.utime(new, (1_700_000_600, 1_700_000_600))
    first = _run(rsa_sshd, str(folder))
    assert (first.input_count, first.watermark_ms) == (3, 1_700_000_600_000)
    second = _run(rsa_sshd, str(folder), since_ms=1_700_000_000_000)
    assert (second.files, second.input_count) == ([str(new)], 2)
    third = _run(rsa_sshd, str(folder), since_ms=first.watermark_ms)
    assert (third.files, third.input_count, third.watermark_ms) == ([], 0, 1_700_000_600_000)
    os.utime(old, (1_700_001_000, 1_700_001_000))  # re-uploaded: a new mtime re-ingests it
    fourth = _run(rsa_sshd, str(folder), since_ms=first.watermark_ms)
    assert (fourth.files, fourth.watermark_ms) == ([str(old)], 1_700_001_000_000)


def test_zero_byte_file_fails_the_run_naming_it(rsa_sshd: Sshd, folder: Path):
    (folder / "a.csv").write_text(CSV)
    (folder / "empty.csv").write_bytes(b"")
    out = _run(rsa_sshd, str(folder))
    assert out.failure == f"file {folder / 'empty.csv'} is 0 bytes: AEP rejects empty files"
    assert (out.records, out.errors, out.input_count, out.watermark_ms) == ([], [], 0, None)


def test_recursive_folder(rsa_sshd: Sshd, folder: Path):
    (folder / "sub").mkdir()
    (folder / "top.csv").write_text("a\n1\n")
    (folder / "sub" / "deep.csv").write_text("a\n2\n3\n")
    assert _run(rsa_sshd, str(folder)).input_count == 1
    assert _run(rsa_sshd, str(folder), recursive=True).input_count == 3


def test_host_key_mismatch_fails_with_a_clear_message(rsa_sshd: Sshd, tmp_path: Path):
    other = keygen(tmp_path / "other", "ed25519")
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{rsa_sshd.port} {kind} {blob}\n")
    (rsa_sshd.landing / "x.csv").write_text(CSV)
    out = _run(rsa_sshd, "x.csv", known_hosts=known)
    assert out.failure is not None
    assert out.failure.startswith(f"host key mismatch for 127.0.0.1:{rsa_sshd.port}")
    assert "refusing to connect" in out.failure
    assert other.exists() and known.read_text().count("\n") == 1  # nothing was added


def test_unknown_host_and_missing_known_hosts_are_refused(rsa_sshd: Sshd, tmp_path: Path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    out = _run(rsa_sshd, "x.csv", known_hosts=empty)
    assert out.failure is not None and "is not in known_hosts" in out.failure
    assert empty.read_text() == ""  # never auto-added
    out = _run(rsa_sshd, "x.csv", known_hosts=None)
    assert out.failure is not None and "without a known_hosts file" in out.failure


def test_wrong_key_is_an_authentication_failure_without_secrets(rsa_sshd: Sshd, tmp_path: Path):
    stranger = keygen(tmp_path / "stranger", "rsa")
    out = _run(rsa_sshd, "x.csv", base=_base(rsa_sshd, privateKeyContent=_b64(stranger)))
    assert out.failure == f"authentication failed for {rsa_sshd.user}@127.0.0.1:{rsa_sshd.port}"
    bad = _run(rsa_sshd, "x.csv", base=_base(rsa_sshd, privateKeyContent="bm90IGEga2V5"))
    assert bad.failure == "auth.params.privateKeyContent does not decode to a PEM private key"


def test_connection_refused(rsa_sshd: Sshd):
    port = free_port()
    out = _run(rsa_sshd, "x.csv", base=_base(rsa_sshd, port=port))
    assert out.failure is not None and out.failure.startswith(
        f"cannot connect to {rsa_sshd.user}@127.0.0.1:{port}"
    )


def test_silent_server_times_out(rsa_sshd: Sshd, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sftp_source, "CONNECT_TIMEOUT_S", 0.5)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        out = _run(rsa_sshd, "x.csv", base=_base(rsa_sshd, port=listener.getsockname()[1]))
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
    assert out.failure is not None and "127.0.0.1" in out.failure
    assert out.failure.startswith("timed out waiting for the SSH banner of")


def test_path_outside_folder_path_is_refused(rsa_sshd: Sshd, folder: Path):
    (folder / "in.csv").write_text("a\n1\n")
    (rsa_sshd.landing / "elsewhere.csv").write_text("a\n1\n")
    for folder_path in (str(folder), folder.name):  # absolute, or from where the session starts
        base = _base(rsa_sshd, folderPath=folder_path)
        assert _run(rsa_sshd, f"{folder.name}/in.csv", base=base).input_count == 1
        assert _run(rsa_sshd, str(folder / "*.csv"), base=base).input_count == 1
        for outside in ("elsewhere.csv", f"{folder.name}/../elsewhere.csv", "/etc/hostname"):
            out = _run(rsa_sshd, outside, base=base)
            assert out.failure == (
                f"path {outside!r} is outside the base connection's folderPath {folder_path!r}"
            )
        root = explore_sftp(base, "/", rsa_sshd.known_hosts)
        assert [i["name"] for i in root] == ["in.csv"]


def test_missing_path_is_a_clear_failure(rsa_sshd: Sshd):
    out = _run(rsa_sshd, "no/such/file.csv")
    assert out.failure == "source path 'no/such/file.csv' does not exist on the SFTP server"


def test_explore_lists_folders_then_files(rsa_sshd: Sshd, folder: Path):
    (folder / "b.csv").write_text("a\n1\n")
    (folder / "a.json").write_text("{}\n")
    (folder / "sub").mkdir()
    items = explore_sftp(_base(rsa_sshd), str(folder), rsa_sshd.known_hosts)
    assert items == [
        {"type": "folder", "name": "sub", "path": f"{folder}/sub/", "canPreview": False, "canFetchSchema": False},
        {"type": "file", "name": "a.json", "path": f"{folder}/a.json", "canPreview": True, "canFetchSchema": True},
        {"type": "file", "name": "b.csv", "path": f"{folder}/b.csv", "canPreview": True, "canFetchSchema": True},
    ]  # fmt: skip
    relative = explore_sftp(_base(rsa_sshd), folder.name, rsa_sshd.known_hosts)
    assert [i["path"] for i in relative] == [
        f"{folder.name}/sub/",
        f"{folder.name}/a.json",
        f"{folder.name}/b.csv",
    ]
    with pytest.raises(SourceError, match="does not exist"):
        explore_sftp(_base(rsa_sshd), "nope", rsa_sshd.known_hosts)


def test_ed25519_key_and_lower_case_username(sshd: Sshd):
    (sshd.landing / "one.csv").write_text("a,b\n1,2\n")
    base = {
        "auth": {
            "params": {
                "host": sshd.host,
                "port": str(sshd.port),
                "username": sshd.user,
                "privateKeyContent": _b64(sshd.client_key),
            }
        }
    }
    out = _run(sshd, "one.csv", base=base)
    assert (out.failure, out.records) == (None, [{"a": "1", "b": "2"}])


def test_encrypted_rsa_key_needs_its_pass_phrase(tmp_path: Path):
    server = start_sshd(
        tmp_path / "enc", client_key_type="rsa", client_key_passphrase="s3cret-phrase"
    )
    try:
        (server.landing / "one.csv").write_text("a\n1\n")
        missing = _run(server, "one.csv")
        assert (
            missing.failure == "the private key is encrypted and auth.params.passPhrase is missing"
        )
        out = _run(server, "one.csv", base=_base(server, passPhrase="s3cret-phrase"))
        assert (out.failure, out.input_count) == (None, 1)
        wrong = _run(server, "one.csv", base=_base(server, passPhrase="nope"))
        assert (
            wrong.failure is not None
            and "s3cret" not in wrong.failure
            and "nope" not in wrong.failure
        )
    finally:
        server.stop()


def test_inspect_a_delimited_file_and_preview_it(rsa_sshd: Sshd, folder: Path):
    (folder / "stores.csv.gz").write_bytes(gzip.compress(b"code;city\nZRH;Zurich\nORL;Orleans\n"))
    (folder / "empty-rows.csv").write_text("code,city\n")
    inspected = inspect_sftp_file(
        _base(rsa_sshd),
        str(folder / "stores.csv.gz"),
        rsa_sshd.known_hosts,
        column_delimiter=";",
        compression="gzip",
        preview=True,
    )
    assert inspected == {
        "format": "flat",
        "schema": {
            "columns": [
                {"name": "code", "type": "string", "xdm": {"type": "string"}},
                {"name": "city", "type": "string", "xdm": {"type": "string"}},
            ]
        },
        "data": [{"code": "ZRH", "city": "Zurich"}, {"code": "ORL", "city": "Orleans"}],
    }
    header_only = inspect_sftp_file(
        _base(rsa_sshd), str(folder / "empty-rows.csv"), rsa_sshd.known_hosts
    )
    assert [c["name"] for c in header_only["schema"]["columns"]] == ["code", "city"]
    assert "data" not in header_only
    with pytest.raises(SourceError, match="is not a file"):
        inspect_sftp_file(_base(rsa_sshd), str(folder), rsa_sshd.known_hosts)


def test_inspect_json_lines_gives_a_hierarchical_schema(rsa_sshd: Sshd, folder: Path):
    (folder / "bills.json").write_text('{"_id": "T1", "commerce": {"order": {"priceTotal": 90}}}\n')
    inspected = inspect_sftp_file(
        _base(rsa_sshd), str(folder / "bills.json"), rsa_sshd.known_hosts, file_type="JSON"
    )
    assert inspected["format"] == "hierarchical"
    order = inspected["schema"]["properties"]["commerce"]["properties"]["order"]
    assert order["properties"]["priceTotal"]["type"] == "integer"


def test_capillary_history_as_json_lines_maps_with_the_seed_table(rsa_sshd: Sshd, folder: Path):
    """Seed 003's migration: Capillary history over SFTP, one JSON object per line."""
    from tests.emulator.test_runner_mapping import (
        CAPILLARY_MAPPING_SET,
        CAPILLARY_PROFILE,
        CAPILLARY_TRANSACTION,
    )

    lines = [CAPILLARY_TRANSACTION, CAPILLARY_PROFILE]
    (folder / "capillary.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = _run(
        rsa_sshd, str(folder / "capillary.json"), fmt="json", mapping_set=CAPILLARY_MAPPING_SET
    )
    assert (out.failure, out.input_count, out.errors) == (None, 2, [])
    assert out.records[0]["productListItems"] == [{"SKU": "sku_01"}, {"SKU": "sku_02"}]
    assert out.records[0]["commerce"] == {"order": {"priceTotal": 90}}
    assert out.records[1]["identityMap"] == {"email": [{"id": "john.doe@capillarytech.com"}]}
    assert (out.records[1]["loyaltyPoints"], out.records[1]["loyaltyTier"]) == (1250, "gold")


def test_server_that_stops_answering_mid_run_times_out(
    rsa_sshd: Sshd, folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sftp_source, "IO_TIMEOUT_S", 0.5)
    (folder / "a.csv").write_text(CSV)
    auth = sftp_source.SftpAuth.from_base_connection(_base(rsa_sshd))
    with sftp_source.open_sftp(auth, rsa_sshd.known_hosts) as sftp:
        files, _ = sftp_source.list_new_files(
            sftp, auth, str(folder), recursive=False, since_ms=None
        )
        frozen = rsa_sshd.connection_pids()
        assert frozen
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(SourceError, match=r"timed out reading .*a\.csv"):
                sftp_source.read_file(sftp, files[0])
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
