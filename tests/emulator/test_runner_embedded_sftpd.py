"""Runs pull from the project's own embedded SFTP server (backfill.sftpd), the embedded default.

The emulator does not import `backfill`; this test joins the two only on the wire, as the
embedded mode of `aep-migrate` does: ship into the embedded server, let the emulator pull.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from backfill.sftpd.keys import public_line, write_known_hosts
from backfill.sftpd.server import EmbeddedSftpServer
from emulator.runner import RunInput, execute_run, explore_sftp


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[EmbeddedSftpServer, dict[str, Any], Path]]:
    """(server, base connection with an RSA PEM key as AEP takes it, known_hosts)."""
    client_key = paramiko.RSAKey.generate(2048)
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(public_line(client_key) + "\n")
    server = EmbeddedSftpServer(tmp_path / "root", tmp_path / "host_key", authorized)
    port = server.start()
    try:
        assert server.host_key is not None
        known = tmp_path / "known_hosts"
        write_known_hosts(known, "127.0.0.1", port, server.host_key)
        pem = tmp_path / "client.pem"
        client_key.write_private_key_file(str(pem))
        base = {
            "auth": {
                "specName": "SSH PublicKey Authentication for sftp",
                "params": {
                    "host": "127.0.0.1",
                    "port": port,
                    "userName": "aep",
                    "privateKeyContent": base64.b64encode(pem.read_bytes()).decode(),
                    "folderPath": "/landing",
                },
            }
        }
        yield server, base, known
    finally:
        server.stop()


def test_run_pulls_from_the_embedded_server(embedded):
    server, base, known = embedded
    folder = server.root / "landing" / "loyalty"
    folder.mkdir(parents=True)
    (folder / "part-1.csv.gz").write_bytes(gzip.compress(b"email,points\na@x.io,1\nb@x.io\n"))
    (folder / ".part-2.csv.gz.1a2b3c4d.part").write_bytes(b"half an upload")
    out = execute_run(
        RunInput(
            flow={"id": "f"},
            flow_spec_name="CloudStorageToAEP",
            base_connection=base,
            source_connection={
                "data": {"format": "delimited", "properties": {"compressionType": "gzip"}},
                "params": {"path": "/landing/loyalty/*.csv.gz", "type": "folder"},
            },
            target_connection={"params": {"dataSetId": "d"}},
            mapping_set=None,
            target_schema=None,
            since_ms=None,
            known_hosts=known,
            stripe_fixtures=None,
        )
    )
    assert out.failure is None
    assert out.files == ["/landing/loyalty/part-1.csv.gz"]
    assert (out.input_count, len(out.records)) == (2, 1)
    assert [(e.line, e.code) for e in out.errors] == [(3, "CSV-FIELD-COUNT")]
    assert [i["path"] for i in explore_sftp(base, "/", known)] == ["/landing/loyalty/"]
