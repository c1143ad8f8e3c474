"""`aep-migrate run` end to end on the embedded default: emulator + embedded SFTP + real CSVs.

The emulator pulls the shipped files from the embedded SFTP server with its own RSA key, runs
the SFTP dataflow, and the counts are reconciled against what was validated and shipped.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from backfill.ledger import Ledger, Step
from backfill.migrate import migrate
from config.loader import load_settings
from config.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AEP_BRIDGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AEP_BRIDGE_SMOKE__TIMEOUT_S", "60")
    monkeypatch.setenv("AEP_BRIDGE_SMOKE__POLL_S", "0.2")  # runs settle in well under 1 s here
    return load_settings()


def _inputs(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / name, folder / Path(name).name)
    return folder


def _runs(settings: Settings) -> list[dict]:
    db = sqlite3.connect(Path(settings.state_dir) / "emulator" / "emulator.sqlite3")
    try:
        return [
            json.loads(b) for (b,) in db.execute("SELECT body FROM resources WHERE kind='runs'")
        ]
    finally:
        db.close()


def test_migration_reconciles_and_a_rerun_does_nothing_twice(settings: Settings, tmp_path: Path):
    folder = _inputs(
        tmp_path,
        "stripe_payments/all_columns_clean.csv",
        "capillary_customers/customers_clean.csv",
    )
    first = migrate(settings, inputs=[folder])
    assert first.ok, first.problems
    assert {f.kind for f in first.files} == {"stripe_payments", "capillary_customers"}
    for f in first.files:
        c = f.counts
        assert f.step is Step.RECONCILED
        assert c["rows_read"] == c["valid"] + c["rejected"] + c["excluded"]
        assert c["shipped"] == c["valid"] > 0
    by_kind = {r.kind: r for r in first.reconciliations}
    for f in first.files:
        rec = by_kind[f.kind]
        assert rec.input == f.counts["shipped"] == rec.output + rec.failed
        assert sum(b["recordCount"] for b in rec.batches) == rec.output
    # the landing zone holds the valid files under their kind's folder
    landed = Path(settings.state_dir) / "sftp" / "landing"
    assert sorted(p.parent.name for p in landed.glob("*/*.csv")) == [
        "capillary_customers",
        "stripe_payments",
    ]
    runs_before = len(_runs(settings))

    again = migrate(settings, inputs=[folder])
    assert again.ok
    assert all(f.skipped for f in again.files)
    assert again.reconciliations == []
    assert len(_runs(settings)) == runs_before  # nothing ingested twice


def test_new_file_of_a_known_kind_gets_an_ad_hoc_run_after_the_landing_zone_moved(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _inputs(tmp_path, "stripe_payments/all_columns_clean.csv")
    assert migrate(settings, inputs=[folder]).ok
    # a second export with other ids; the embedded SFTP server comes back on another port,
    # and the landing folder moved, so the base connection's auth params and the source
    # connection's path must be brought up to date before the run
    text = (FIXTURES / "stripe_payments/all_columns_clean.csv").read_text()
    (folder / "later.csv").write_text(text.replace("ch_", "ch_9").replace("pi_", "pi_9"))
    monkeypatch.setenv("AEP_BRIDGE_SFTP__REMOTE_ROOT", "/landing2")
    second = migrate(load_settings(), inputs=[folder])
    assert second.ok, second.problems
    assert [r.rows_shipped for r in second.reconciliations] == [
        next(f.counts["shipped"] for f in second.files if f.path.endswith("later.csv"))
    ]
    created = second.dataflows["stripe_payments"].created
    assert "base connection (auth updated)" in created
    assert "source connection (path updated)" in created
    # an ad-hoc run of a file source names its window as well as its start (POST /runs)
    [ad_hoc] = [r["params"] for r in _runs(settings) if r["params"].get("windowStartTime")]
    assert ad_hoc["windowStartTime"] <= ad_hoc["windowEndTime"] == ad_hoc["startTime"]
    assert ad_hoc["windowEndTime"] - ad_hoc["windowStartTime"] < 600
    with Ledger.in_state_dir(Path(settings.state_dir)) as ledger:
        assert {e.step for e in ledger.entries()} == {Step.RECONCILED}


def test_a_file_above_the_reject_rate_is_never_shipped(settings: Settings, tmp_path: Path):
    folder = _inputs(
        tmp_path,
        "stripe_payments/all_columns_clean.csv",
        "stripe_payments/default_defects.csv",
    )
    result = migrate(settings, inputs=[folder])
    assert not result.ok
    bad = next(f for f in result.files if f.path.endswith("default_defects.csv"))
    assert bad.step is Step.FAILED and "default_defects.csv" in (bad.reason or "")
    assert (
        bad.counts["rows_read"]
        == bad.counts["valid"] + bad.counts["rejected"] + bad.counts["excluded"]
    )
    assert any("default_defects.csv" in p for p in result.problems)
    landed = Path(settings.state_dir) / "sftp" / "landing" / "stripe_payments"
    [shipped] = landed.glob("*.csv")
    assert shipped.name.startswith("all_columns_clean.") and shipped.name.endswith(".valid.csv")
    good = next(f for f in result.files if f.path.endswith("all_columns_clean.csv"))
    assert good.step is Step.RECONCILED


def test_the_command_prints_the_summary_and_exits_by_outcome(tmp_path: Path):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    env = {
        "AEP_BRIDGE_STATE_DIR": str(tmp_path / "state"),
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "200",
    }
    cmd = [sys.executable, "-m", "backfill.cli", "run", str(folder)]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "every count adds up" in ok.stdout
    assert "customers_clean.csv" in ok.stdout
    missing = subprocess.run(
        [*cmd[:-1], str(tmp_path / "nope")], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 1
    assert "no such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout


class _Crash(Exception):
    """Stands for the process dying at a chosen point."""


def test_a_crash_after_ingest_is_settled_from_the_recorded_run(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    record = Ledger.record

    def crash_before_reconciled(self: Ledger, sha256: str, step: Step, **kw):  # type: ignore[no-untyped-def]
        if step is Step.RECONCILED:
            raise _Crash
        return record(self, sha256, step, **kw)

    monkeypatch.setattr(Ledger, "record", crash_before_reconciled)
    with pytest.raises(_Crash):
        migrate(settings, inputs=[folder])
    monkeypatch.setattr(Ledger, "record", record)
    runs_before = len(_runs(settings))

    again = migrate(settings, inputs=[folder])
    assert again.ok, again.problems
    assert [f.step for f in again.files] == [Step.RECONCILED]
    assert len(again.reconciliations) == 1
    assert len(_runs(settings)) == runs_before  # settled from the recorded run, no new one


def test_a_failed_run_is_retried_with_a_new_run_by_the_next_invocation(
    settings: Settings, tmp_path: Path
):
    import httpx

    from emulator.embed import EmbeddedEmulator

    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    faults = {"faults": True}
    first = migrate(settings, inputs=[folder], emulator_options=faults)
    assert first.ok, first.problems
    flow_id = first.dataflows["capillary_customers"].flow_id
    with EmbeddedEmulator(Path(settings.state_dir) / "emulator", faults=True) as emu:
        armed = httpx.post(
            f"{emu.base_url}/_emulator/runs/fail",
            json={
                "flowId": flow_id,
                "org": settings.platform.org_id,
                "sandbox": settings.platform.sandbox,
                "message": "injected",
            },
        )
        assert armed.status_code == 201
    lines = (folder / "customers_clean.csv").read_text().splitlines()
    (folder / "later.csv").write_text("\n".join(lines[:3]) + "\n")

    second = migrate(settings, inputs=[folder], emulator_options=faults)
    assert not second.ok
    assert any("injected" in p for p in second.problems)
    failed_run = second.reconciliations[0].run_id

    third = migrate(settings, inputs=[folder], emulator_options=faults)
    assert third.ok, third.problems
    [rec] = third.reconciliations
    assert rec.run_id != failed_run
    assert rec.input == rec.rows_shipped == 2
    assert {f.step for f in third.files} == {Step.RECONCILED}


def test_a_crash_between_ship_and_ingest_resumes_at_ingest(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import backfill.migrate as m

    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")

    def crash(*_a, **_k):  # type: ignore[no-untyped-def]
        raise _Crash

    with monkeypatch.context() as patched:
        patched.setattr(m, "_ingest", crash)
        with pytest.raises(_Crash):
            migrate(settings, inputs=[folder])
    with Ledger.in_state_dir(Path(settings.state_dir)) as ledger:
        assert [e.step for e in ledger.entries()] == [Step.SHIPPED]
    landed = sorted((Path(settings.state_dir) / "sftp" / "landing").rglob("*.csv"))

    again = migrate(settings, inputs=[folder])
    assert again.ok, again.problems
    [rec] = again.reconciliations
    assert rec.rows_shipped == rec.input == again.files[0].counts["valid"]
    assert sorted((Path(settings.state_dir) / "sftp" / "landing").rglob("*.csv")) == landed
    assert len(_runs(settings)) == 1


def test_a_rerun_after_the_validated_outputs_were_cleaned_up_does_nothing(
    settings: Settings, tmp_path: Path
):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    assert migrate(settings, inputs=[folder]).ok
    shutil.rmtree(Path(settings.state_dir) / "validated")  # only needed until shipped
    runs_before = len(_runs(settings))

    again = migrate(settings, inputs=[folder])
    assert again.ok, again.problems
    assert [(f.step, f.skipped) for f in again.files] == [(Step.RECONCILED, True)]
    assert len(_runs(settings)) == runs_before


def test_a_count_mismatch_is_reported_by_every_rerun_and_never_re_ingested(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import backfill.migrate as m

    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    with monkeypatch.context() as patched:
        patched.setattr(m, "_ingest", lambda *_a, **_k: None)  # stop after shipping
        migrate(settings, inputs=[folder])
    with Ledger.in_state_dir(Path(settings.state_dir)) as ledger:
        [e] = ledger.entries()
        wrong = {"shipped": e.counts["shipped"] + 1}  # the ledger and AEP now disagree
        ledger.record(e.sha256, Step.SHIPPED, input_path=e.input_path, kind=e.kind, counts=wrong)

    second = migrate(settings, inputs=[folder])
    assert not second.ok
    assert [p for p in second.problems if "!= run inputRecordCount" in p]
    runs = len(_runs(settings))

    third = migrate(settings, inputs=[folder])
    assert not third.ok
    assert third.reconciliations == [] and len(_runs(settings)) == runs
    [problem] = third.problems
    assert "customers_clean.csv" in problem and "!= run inputRecordCount" in problem


def test_a_platform_configuration_problem_exits_2_before_any_work(tmp_path: Path):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    env = {
        "AEP_BRIDGE_STATE_DIR": str(tmp_path / "state"),
        "AEP_BRIDGE_PLATFORM__MODE": "remote",
        "PATH": "/usr/bin:/bin",
    }
    cmd = [sys.executable, "-m", "backfill.cli", "run", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "AEP_BRIDGE_PLATFORM__CLIENT_SECRET" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "state" / "ledger.sqlite").exists()  # nothing validated or shipped


def test_exports_with_one_file_name_never_overwrite_each_other(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import backfill.migrate as m

    lines = (FIXTURES / "capillary_customers/customers_clean.csv").read_text().splitlines()
    jan, feb = tmp_path / "jan", tmp_path / "feb"
    jan.mkdir()
    feb.mkdir()
    (jan / "customers.csv").write_text("\n".join(lines[:3]) + "\n")  # 2 rows
    (feb / "customers.csv").write_text("\n".join([lines[0], *lines[3:]]) + "\n")
    with monkeypatch.context() as patched:
        patched.setattr(m, "_ingest", lambda *_a, **_k: None)  # killed before ingesting jan
        migrate(settings, inputs=[jan])

    result = migrate(settings, inputs=[feb])
    assert result.ok, result.problems
    [rec] = result.reconciliations  # one run over both months' files
    assert rec.rows_shipped == rec.input == 2 + len(lines) - 3
    landed = Path(settings.state_dir) / "sftp" / "landing" / "capillary_customers"
    assert len(list(landed.glob("*.csv"))) == 2


def test_an_unreadable_export_is_a_problem_naming_it_and_the_others_go_through(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import backfill.migrate as m

    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    locked = folder / "locked.csv"
    locked.write_text("id\n1\n")
    sha256 = m._sha256

    def unreadable(path: Path) -> str:  # root reads any file: stand in for mode 000
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return sha256(path)

    monkeypatch.setattr(m, "_sha256", unreadable)
    result = migrate(settings, inputs=[folder])
    assert not result.ok
    assert [p for p in result.problems if "locked.csv" in p and "Permission denied" in p]
    [good] = [f for f in result.files if f.path.endswith("customers_clean.csv")]
    assert good.step is Step.RECONCILED


def test_a_platform_error_on_one_kind_is_its_problem_and_the_other_kinds_go_through(
    settings: Settings, tmp_path: Path
):
    from aep.platform import open_platform

    with open_platform(settings) as opened:  # someone made the dataset twice by hand
        c = opened.client
        schema = c.schemas.create_schema(
            {
                "title": "by hand",
                "type": "object",
                "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/experienceevent"}],
            }
        )
        ref = {"id": schema.id, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
        ids = [
            c.catalog.create_dataset({"name": "aep-bridge-stripe_payments", "schemaRef": ref})
            for _ in range(2)
        ]
    folder = _inputs(
        tmp_path,
        "stripe_payments/all_columns_clean.csv",
        "capillary_customers/customers_clean.csv",
    )
    result = migrate(settings, inputs=[folder])
    assert not result.ok
    [problem] = result.problems
    assert "stripe_payments" in problem and all(i in problem for i in ids)
    steps = {f.kind: f.step for f in result.files}
    assert steps == {"capillary_customers": Step.RECONCILED, "stripe_payments": Step.FAILED}


def test_an_unusable_state_dir_is_a_configuration_problem(tmp_path: Path):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    (tmp_path / "not-a-dir").write_text("")
    env = {"AEP_BRIDGE_STATE_DIR": str(tmp_path / "not-a-dir"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "backfill.cli", "run", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "state_dir" in done.stderr and "not-a-dir" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ledger.sqlite").write_text("not a database " * 100)
    env["AEP_BRIDGE_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "ledger.sqlite" in done.stderr and "Traceback" not in done.stderr


def test_inputs_are_the_exports_in_a_folder_whatever_else_it_holds(tmp_path: Path):
    from backfill.migrate import _csv_inputs

    for name in ("b.csv", "a.CSV", "old.valid.csv", "old.rejects.csv", ".hidden.csv", "n.txt"):
        (tmp_path / name).write_text("id\n1\n")
    (tmp_path / "sub.csv").mkdir()
    named = tmp_path / "named.valid.csv"  # named on the command line: taken as given
    assert _csv_inputs([tmp_path]) == [tmp_path / "a.CSV", tmp_path / "b.csv"]
    assert _csv_inputs([named]) == [named]


def test_json_output_stays_json_when_the_migration_stops_on_an_error(tmp_path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    key = tmp_path / "id_ed25519"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "known_hosts").write_text("")
    env = {
        "AEP_BRIDGE_STATE_DIR": str(tmp_path / "state"),
        "AEP_BRIDGE_SFTP__PORT": "1",  # nothing listens: the landing zone is unreachable
        "AEP_BRIDGE_SFTP__MAX_ATTEMPTS": "1",
        "AEP_BRIDGE_AEP_PULL__PASSWORD": "pull-Pa55word",
        "AEP_BRIDGE_SFTP__KEY_PATH": str(key),
        "AEP_BRIDGE_SFTP__KNOWN_HOSTS": str(tmp_path / "known_hosts"),
        "PATH": "/usr/bin:/bin",
    }
    cmd = [sys.executable, "-m", "backfill.cli", "run", "--json", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert answer["ok"] is False and "cannot connect" in answer["error"]
    assert "Traceback" not in done.stderr
    assert "pull-Pa55word" not in done.stdout + done.stderr


def test_a_recorded_run_platform_cannot_find_is_a_problem_not_an_abort(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _inputs(
        tmp_path,
        "capillary_customers/customers_clean.csv",
        "stripe_payments/all_columns_clean.csv",
    )
    record = Ledger.record

    def crash_before_reconciled(self: Ledger, sha256: str, step: Step, **kw):  # type: ignore[no-untyped-def]
        if step is Step.RECONCILED and kw["kind"] == "capillary_customers":
            raise _Crash
        return record(self, sha256, step, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "record", crash_before_reconciled)
        with pytest.raises(_Crash):
            migrate(settings, inputs=[folder])
    with Ledger.in_state_dir(Path(settings.state_dir)) as ledger:
        for e in ledger.entries():  # the recorded run is gone from the platform
            if e.step is Step.INGESTED:
                ledger.record(
                    e.sha256,
                    Step.INGESTED,
                    input_path=e.input_path,
                    kind=e.kind,
                    details={"run_id": "0b2f2c9e-0000-4000-8000-000000000000"},
                )

    again = migrate(settings, inputs=[folder])
    assert not again.ok
    assert [p for p in again.problems if "0b2f2c9e-0000-4000-8000-000000000000" in p]
    assert {f.kind: f.step for f in again.files}["stripe_payments"] is Step.RECONCILED


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("AEP_BRIDGE_BACKFILL__CONTRACTS_DIR", "/nonexistent/contracts", "backfill.contracts_dir"),
        ("AEP_BRIDGE_BACKFILL__CUTOVER", "next tuesday", "backfill.cutover"),
    ],
)
def test_a_bad_backfill_setting_is_a_configuration_problem_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
):
    from config.loader import ConfigError

    monkeypatch.setenv("AEP_BRIDGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv(variable, value)
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    with pytest.raises(ConfigError) as info:
        migrate(load_settings(), inputs=[folder])
    assert key in str(info.value) and value in str(info.value)
    assert not (tmp_path / "state" / "validated").exists()


def test_two_exports_with_the_same_content_are_taken_once_and_nothing_is_lost(
    settings: Settings, tmp_path: Path
):
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    shutil.copy(folder / "customers_clean.csv", folder / "copy.csv")
    # the folder and one of its files named again: three paths, one content
    result = migrate(settings, inputs=[folder, folder / "customers_clean.csv"])
    assert result.ok, result.problems
    [rec] = result.reconciliations
    rows = len((folder / "copy.csv").read_text().splitlines()) - 1
    assert rec.rows_shipped == rec.input == rows  # shipped once, not zero, not twice
    assert [f.path for f in result.files] == [str(folder / "copy.csv")]
    assert any("customers_clean.csv" in n and "copy.csv" in n for n in result.notes)


def test_turning_gzip_on_between_runs_ingests_the_compressed_files_too(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _inputs(tmp_path, "stripe_payments/all_columns_clean.csv")
    assert migrate(settings, inputs=[folder]).ok
    text = (FIXTURES / "stripe_payments/all_columns_clean.csv").read_text()
    (folder / "later.csv").write_text(text.replace("ch_", "ch_9").replace("pi_", "pi_9"))
    monkeypatch.setenv("AEP_BRIDGE_SFTP__GZIP", "true")

    second = migrate(load_settings(), inputs=[folder])
    assert second.ok, second.problems
    [rec] = second.reconciliations
    assert rec.rows_shipped == rec.input > 0
    assert "flow" in second.dataflows["stripe_payments.gzip"].created


def test_a_run_older_than_the_files_is_never_taken_for_them(settings: Settings, tmp_path: Path):
    # another state directory (another machine, or a lost ledger) migrated this kind before:
    # the flow exists and has a finished run that nobody here recorded
    first = _inputs(tmp_path, "stripe_payments/all_columns_clean.csv")
    assert migrate(settings, inputs=[first]).ok
    (Path(settings.state_dir) / "ledger.sqlite").unlink()
    db = sqlite3.connect(Path(settings.state_dir) / "emulator" / "emulator.sqlite3")
    with db:  # that run was an hour ago
        for rid, body in db.execute("SELECT id, body FROM resources WHERE kind='runs'"):
            run = json.loads(body)
            run["createdAt"] -= 3_600_000
            db.execute("UPDATE resources SET body=? WHERE id=?", (json.dumps(run), rid))
    db.close()
    later = tmp_path / "later"
    later.mkdir()
    text = (FIXTURES / "stripe_payments/all_columns_clean.csv").read_text()
    (later / "later.csv").write_text(text.replace("ch_", "ch_9").replace("pi_", "pi_9"))

    second = migrate(settings, inputs=[later])
    assert second.ok, second.problems
    assert len(_runs(settings)) == 2  # a run of its own, not the old one with as many rows


def test_a_real_landing_zone_without_aep_s_pull_credential_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from config.loader import ConfigError

    monkeypatch.setenv("AEP_BRIDGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AEP_BRIDGE_SFTP__PORT", "2222")  # a configured server, not embedded
    folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
    with pytest.raises(ConfigError) as info:
        migrate(load_settings(), inputs=[folder])
    text = str(info.value)  # every problem at once
    assert "AEP_BRIDGE_AEP_PULL__PASSWORD" in text and "AEP_BRIDGE_AEP_PULL__PRIVATE_KEY" in text
    assert "sftp.known_hosts" in text
    assert not (tmp_path / "state" / "validated").exists()


def test_migrating_against_a_served_emulator_with_the_embedded_sftp_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """http mode: `aep-emulator serve` started first, with a known_hosts file that the embedded
    SFTP server writes only when the migration starts it."""
    import socket
    import time

    import httpx

    state = tmp_path / "state"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    known_hosts = state / "sftp-keys" / "known_hosts"
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("aep-emulator")),
            "serve",
            "--port",
            str(port),
            "--state",
            str(tmp_path / "emu"),
            "--known-hosts",
            str(known_hosts),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(url + "/ims/token/v3", timeout=1)
                break
            except httpx.TransportError:
                assert serve.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        monkeypatch.setenv("AEP_BRIDGE_STATE_DIR", str(state))
        monkeypatch.setenv("AEP_BRIDGE_PLATFORM__MODE", "http")
        for key in ("GATEWAY_URL", "IMS_URL", "INLET_URL"):
            monkeypatch.setenv(f"AEP_BRIDGE_PLATFORM__{key}", url)
        monkeypatch.setenv("AEP_BRIDGE_SMOKE__TIMEOUT_S", "60")
        folder = _inputs(tmp_path, "capillary_customers/customers_clean.csv")
        result = migrate(load_settings(), inputs=[folder])
        assert result.ok, result.problems
        assert [r.status for r in result.reconciliations] == ["success"]
    finally:
        serve.terminate()
        out, _ = serve.communicate(timeout=30)
    assert serve.returncode == 0, out
    assert b"does not exist yet" in out


_ORPHAN_LINE = "8009,999999,ZZ-0001,SKU-9,Orphan,1,5.00,5.00,0,5.00,\n"


def _bills_and_line_items(tmp_path: Path) -> Path:
    folder = _inputs(
        tmp_path,
        "capillary_transactions/transactions_clean.csv",
        "capillary_line_items/line_items_clean.csv",
    )
    with (folder / "line_items_clean.csv").open("a") as f:
        f.write(_ORPHAN_LINE)  # its bill is in no transactions file
    return folder


def _landed_records(settings: Settings, batch_ids: list[str]) -> list[dict]:
    from aep.platform import open_platform

    with open_platform(settings) as opened:
        texts = [t for b in batch_ids for t in opened.client.data_access.batch_texts(b)]
    return [json.loads(line) for text in texts for line in text.splitlines() if line.strip()]


def test_bills_land_with_their_line_items_nested_and_a_rerun_does_nothing_twice(
    settings: Settings, tmp_path: Path
):
    folder = _bills_and_line_items(tmp_path)
    first = migrate(settings, inputs=[folder])
    assert first.ok, first.problems
    bills = next(f for f in first.files if f.kind == "capillary_transactions")
    items = next(f for f in first.files if f.kind == "capillary_line_items")
    for f in first.files:
        c = f.counts
        assert f.step is Step.RECONCILED
        assert c["rows_read"] == c["valid"] + c["rejected"] + c["excluded"]
    assert bills.counts["shipped"] == bills.counts["valid"] == 3
    assert items.counts["valid"] == items.counts["nested"] + items.counts["orphans"]
    assert (items.counts["nested"], items.counts["orphans"], items.counts["shipped"]) == (3, 1, 0)
    assert bills.counts["line_items_nested"] == items.counts["nested"]
    # one run, over the bills: rows shipped = bills = the run's input
    [rec] = first.reconciliations
    assert rec.rows_shipped == rec.input == rec.output == 3 and rec.failed == 0
    assert set(first.dataflows) == {"capillary_transactions.jsonl"}
    # the bills went out as JSON lines; the line items were not shipped as a flat kind
    landed = Path(settings.state_dir) / "sftp" / "landing"
    [jsonl] = landed.glob("*/*.jsonl")
    assert jsonl.parent.name == "capillary_transactions"
    assert list(landed.glob("*/*.csv")) == []
    assert not (landed / "capillary_line_items").exists()
    [orphans] = Path(settings.state_dir).glob("validated/*/line_items_clean.*.orphans.csv")
    assert orphans.read_text().splitlines()[1:] == [_ORPHAN_LINE.rstrip("\n") + ",orphan_line_item"]
    # the records AEP wrote carry the line items as productListItems
    records = _landed_records(settings, [b["id"] for b in rec.batches])
    products = {r["_id"]: r.get("productListItems") for r in records}
    # (as the valid CSV gives them: the tenant schema does not describe productListItems)
    assert products["910001"] == [
        {"SKU": "SKU-2001", "name": "Shirt, blue", "quantity": "2", "priceTotal": "1100.00"},
        {"SKU": "000987", "name": "Gift wrap", "quantity": "1", "priceTotal": "0"},
    ]
    assert [p["SKU"] for p in products["910002"]] == ["SKU-2003"]
    assert products.get("910003") in (None, [])
    runs_before = len(_runs(settings))

    again = migrate(settings, inputs=[folder])
    assert again.ok, again.problems
    assert all(f.skipped for f in again.files)
    assert again.reconciliations == []
    assert len(_runs(settings)) == runs_before  # nothing shipped or ingested twice
    with Ledger.in_state_dir(Path(settings.state_dir)) as ledger:
        assert {e.step for e in ledger.entries()} == {Step.RECONCILED}


def test_a_crash_after_the_bills_shipped_settles_their_line_items_without_nesting_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _bills_and_line_items(tmp_path)
    record = Ledger.record

    def crash_before_line_items_shipped(self: Ledger, sha256: str, step: Step, **kw):  # type: ignore[no-untyped-def]
        if step is Step.SHIPPED and kw["kind"] == "capillary_line_items":
            raise _Crash
        return record(self, sha256, step, **kw)

    monkeypatch.setattr(Ledger, "record", crash_before_line_items_shipped)
    with pytest.raises(_Crash):
        migrate(settings, inputs=[folder])
    monkeypatch.setattr(Ledger, "record", record)
    landed = Path(settings.state_dir) / "sftp" / "landing"
    shipped_before = sorted(landed.rglob("*.jsonl"))

    again = migrate(settings, inputs=[folder])
    assert again.ok, again.problems
    assert {f.step for f in again.files} == {Step.RECONCILED}
    items = next(f for f in again.files if f.kind == "capillary_line_items")
    assert (items.counts["nested"], items.counts["orphans"]) == (3, 1)
    [rec] = again.reconciliations
    assert rec.rows_shipped == rec.input == 3
    assert sorted(landed.rglob("*.jsonl")) == shipped_before  # nothing shipped again


def test_nested_bills_get_a_flow_of_their_own_beside_the_bills_csv_flow(
    settings: Settings, tmp_path: Path
):
    alone = _inputs(tmp_path, "capillary_transactions/transactions_clean.csv")
    first = migrate(settings, inputs=[alone])
    assert first.ok, first.problems
    assert set(first.dataflows) == {"capillary_transactions"}  # bills alone ship flat
    later = tmp_path / "later"
    later.mkdir()
    for name, src in (
        ("bills.csv", "capillary_transactions/transactions_clean.csv"),
        ("items.csv", "capillary_line_items/line_items_clean.csv"),
    ):
        text = (FIXTURES / src).read_text().replace(",9100", ",9200").replace("\n9100", "\n9200")
        (later / name).write_text(text)
    second = migrate(settings, inputs=[later])
    assert second.ok, second.problems
    flat, nested = (
        first.dataflows["capillary_transactions"],
        second.dataflows["capillary_transactions.jsonl"],
    )
    assert nested.dataset_id == flat.dataset_id
    assert nested.flow_id != flat.flow_id
    assert nested.source_connection_id != flat.source_connection_id
    assert nested.mapping_set_id != flat.mapping_set_id
    items = next(f for f in second.files if f.kind == "capillary_line_items")
    assert (items.counts["nested"], items.counts["orphans"]) == (3, 0)
    [rec] = second.reconciliations
    assert rec.rows_shipped == rec.input == 3


def test_a_bills_file_that_failed_to_ship_is_nested_again_with_its_line_items(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import backfill.migrate as migrate_module
    from backfill.ship.run import FileResult

    lines = (FIXTURES / "capillary_transactions/transactions_clean.csv").read_text().splitlines()
    folder = _inputs(tmp_path, "capillary_line_items/line_items_clean.csv")
    (folder / "bills_a.csv").write_text("\n".join([lines[0], lines[1]]) + "\n")  # 910001
    (folder / "bills_b.csv").write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # 910002-3
    real_ship = migrate_module.ship

    def b_fails(local, *args, **kwargs):  # type: ignore[no-untyped-def]
        # the upload of bills_b's JSON lines fails (as a dropped connection would make it)
        keep = [p for p in local if not p.name.startswith("bills_b.")]
        shipped = real_ship(keep, *args, **kwargs)
        by_source = {f.source: f for f in shipped.files}
        shipped.files = [
            by_source.get(str(p)) or FileResult(str(p), "failed", error="connection lost")
            for p in local
        ]
        return shipped

    monkeypatch.setattr(migrate_module, "ship", b_fails)
    first = migrate(settings, inputs=[folder])
    assert not first.ok
    steps = {Path(f.path).name: f.step for f in first.files}
    assert steps == {
        "bills_a.csv": Step.RECONCILED,
        "bills_b.csv": Step.FAILED,
        "line_items_clean.csv": Step.FAILED,
    }
    monkeypatch.setattr(migrate_module, "ship", real_ship)

    second = migrate(settings, inputs=[folder])
    assert second.ok, second.problems
    assert {f.step for f in second.files} == {Step.RECONCILED}
    items = next(f for f in second.files if f.kind == "capillary_line_items")
    # 910001's items went out with bills_a: nested, not orphans
    assert (items.counts["nested"], items.counts["orphans"]) == (3, 0)
    [rec] = second.reconciliations
    assert rec.rows_shipped == rec.input == 2  # bills_b only: bills_a is not read again
    batches = [b["id"] for r in [*first.reconciliations, rec] for b in r.batches]
    products = {r["_id"]: r.get("productListItems") for r in _landed_records(settings, batches)}
    assert sorted(products) == ["910001", "910002", "910003"]  # each bill landed once
    assert [p["SKU"] for p in products["910001"]] == ["SKU-2001", "000987"]
    assert [p["SKU"] for p in products["910002"]] == ["SKU-2003"]


def test_the_command_shows_line_items_travelling_inside_their_bills(tmp_path: Path):
    folder = _inputs(
        tmp_path,
        "capillary_transactions/transactions_clean.csv",
        "capillary_line_items/line_items_clean.csv",
    )
    env = {"AEP_BRIDGE_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    env["COLUMNS"] = "200"
    cmd = [sys.executable, "-m", "backfill.cli", "run", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    row = next(line for line in done.stdout.splitlines() if "line_items_clean.csv" in line)
    assert " in bills, " in row and " orphans " in row
