"""The configuration loader: precedence, every problem with its key path, secrets refused."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from config.cli_support import settings_or_exit
from config.keys import private_key_content
from config.loader import SHIPPED_DEFAULT, ConfigError, load_settings

BIN = Path(sys.executable).parent


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_bad_file_lists_every_problem_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [platform]
        mode = "cloud"
        timeout_s = "soon"
        [sftp]
        port = 70000
        hostname = "typo"
        [backfill]
        max_reject_rate = 2
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert str(path) in text
    for key in (
        "platform.mode",
        "platform.timeout_s",
        "sftp.port",
        "sftp.hostname",
        "backfill.max_reject_rate",
    ):
        assert f"  - {key}: " in text, key
    assert len(info.value.problems) == 5


def test_the_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "[platform]\nmode = 'cloud'\n")
    done = subprocess.run(
        [str(BIN / "aep-sync"), "show-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "platform.mode" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_settings_or_exit_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings_or_exit(write(tmp_path, "state_dir = 3\n[flows]\nprefix = []\n"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "state_dir" in err and "flows.prefix" in err


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[platform]\nmode = \n"))
    assert "line 2" in str(info.value) and "column" in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value) and "file not found" in str(info.value)


def test_a_secret_in_the_file_is_refused_naming_the_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [platform]
        client_secret = "s3cr3t-in-file"
        [aep_pull]
        password = "another-one"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert "platform.client_secret" in text and "AEP_BRIDGE_PLATFORM__CLIENT_SECRET" in text
    assert "aep_pull.password" in text and "AEP_BRIDGE_AEP_PULL__PASSWORD" in text
    assert "s3cr3t-in-file" not in text and "another-one" not in text


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[platform]\nsandbox = 'from-file'\norg_id = 'ORG@AdobeOrg'\n")
    monkeypatch.setenv("AEP_BRIDGE_PLATFORM__SANDBOX", "from-env")
    monkeypatch.setenv("AEP_BRIDGE_PLATFORM__CLIENT_SECRET", "env-secret")
    settings = load_settings(path)
    assert settings.platform.sandbox == "from-env"
    assert settings.platform.org_id == "ORG@AdobeOrg"  # the rest of the section stays
    assert settings.platform.client_secret is not None
    assert settings.platform.client_secret.get_secret_value() == "env-secret"


def test_bad_environment_values_are_reported_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AEP_BRIDGE_SFTP__PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""))
    assert "sftp.port" in str(info.value)


def test_precedence_option_then_variable_then_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_option = write(tmp_path, "[platform]\nsandbox = 'option'\n", "a.toml")
    by_env = write(tmp_path, "[platform]\nsandbox = 'variable'\n", "b.toml")
    assert load_settings(None).platform.client_id == "aep-bridge-dev"  # shipped local.toml
    assert SHIPPED_DEFAULT.name == "local.toml"
    monkeypatch.setenv("AEP_BRIDGE_CONFIG", str(by_env))
    assert load_settings(None).platform.sandbox == "variable"
    assert load_settings(by_option).platform.sandbox == "option"


def test_the_shipped_files_load(monkeypatch: pytest.MonkeyPatch) -> None:
    local = load_settings(SHIPPED_DEFAULT)
    assert local.platform.mode == "embedded"
    example = load_settings(SHIPPED_DEFAULT.with_name("example.toml"))
    assert example.platform.mode == "remote"


# --- AEP's SFTP credential ------------------------------------------------------------------


def _rsa_pem(fmt: serialization.PrivateFormat, password: bytes | None = None) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return _rsa_pem(serialization.PrivateFormat.TraditionalOpenSSL)


def _load_with_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for name, value in env.items():
        monkeypatch.setenv(f"AEP_BRIDGE_AEP_PULL__{name.upper()}", value)
    return load_settings(write(tmp_path, "[aep_pull]\nhost = 'sftp.example.com'\n"))


def test_an_rsa_pem_key_is_accepted_as_pem_or_base64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_pem: str
) -> None:
    _load_with_key(tmp_path, monkeypatch, private_key=rsa_pem)
    _load_with_key(tmp_path, monkeypatch, private_key=private_key_content(rsa_pem))


@pytest.mark.parametrize(
    ("make_key", "passphrase", "expected"),
    [
        (lambda: _rsa_pem(serialization.PrivateFormat.OpenSSH), None, "ssh-keygen -p -m PEM"),
        (
            lambda: (
                ed25519.Ed25519PrivateKey.generate()
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            ),
            None,
            "an RSA key is required",
        ),
        (
            lambda: _rsa_pem(serialization.PrivateFormat.TraditionalOpenSSL, b"pw12"),
            None,
            "AEP_BRIDGE_AEP_PULL__PASSPHRASE",
        ),
        (
            lambda: _rsa_pem(serialization.PrivateFormat.TraditionalOpenSSL, b"pw12"),
            "wrong",
            "wrong passphrase",
        ),
        (
            lambda: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            None,
            "not a readable PEM",
        ),
        (lambda: "just text", None, "not a PEM private key"),
    ],
    ids=[
        "openssh-format",
        "ed25519",
        "encrypted-no-passphrase",
        "wrong-passphrase",
        "garbage-pem",
        "not-pem",
    ],
)
def test_other_keys_are_refused_at_load(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_key: object,
    passphrase: str | None,
    expected: str,
) -> None:
    key = make_key()  # type: ignore[operator]
    env = {"private_key": key}
    if passphrase:
        env["passphrase"] = passphrase
    with pytest.raises(ConfigError) as info:
        _load_with_key(tmp_path, monkeypatch, **env)
    text = str(info.value)
    assert "aep_pull: " in text and expected in text
    assert key.strip().splitlines()[1 if "\n" in key.strip() else 0] not in text


def test_password_or_key_not_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_pem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load_with_key(tmp_path, monkeypatch, private_key=rsa_pem, password="pw-here")
    assert "not both" in str(info.value) and "pw-here" not in str(info.value)
    monkeypatch.delenv("AEP_BRIDGE_AEP_PULL__PRIVATE_KEY")
    with pytest.raises(ConfigError, match="passphrase is set but private_key is not"):
        _load_with_key(tmp_path, monkeypatch, passphrase="x")
    monkeypatch.delenv("AEP_BRIDGE_AEP_PULL__PASSPHRASE")
    settings = _load_with_key(tmp_path, monkeypatch)
    assert settings.aep_pull.password.get_secret_value() == "pw-here"  # type: ignore[attr-defined]
    assert os.environ["AEP_BRIDGE_AEP_PULL__PASSWORD"] == "pw-here"


def test_platform_identifiers_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [platform]
        org_id = "0A7D42FC5DB9D3360A495FD3"
        sandbox = "Prod"
        gateway_url = "platform.adobe.io"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert "platform.org_id: Value error, an IMS org id ends with '@AdobeOrg'" in text
    assert "platform.sandbox: Value error, sandbox names are lower case" in text
    assert "platform.gateway_url: Value error, must be an http:// or https:// URL" in text


def test_an_unparsable_environment_value_is_a_problem_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[sftp]\nport = 22\n")
    monkeypatch.setenv("AEP_BRIDGE_PLATFORM__SCOPES", "openid,AdobeID")  # a list wants JSON
    monkeypatch.setenv("AEP_BRIDGE_SFTP__PORT", "twenty-two")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert "AEP_BRIDGE_PLATFORM__SCOPES" in text and "JSON" in text
    monkeypatch.delenv("AEP_BRIDGE_PLATFORM__SCOPES")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    # the bad value is in the environment, not in the file the message names
    assert "sftp.port" in str(info.value) and "AEP_BRIDGE_SFTP__PORT" in str(info.value)


def test_a_cutover_that_is_not_an_instant_is_a_configuration_problem(tmp_path):
    from config.loader import ConfigError, load_settings

    for bad, why in (
        ("last tuesday", "not an ISO 8601 instant"),
        ("2024-07-01T00:00:00", "time zone"),
    ):
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[backfill]\ncutover = "{bad}"\n')
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert any(p.startswith("backfill.cutover") and why in p for p in err.value.problems)
    cfg.write_text('[backfill]\ncutover = "2024-07-01T00:00:00Z"\n')
    assert load_settings(cfg).backfill.cutover == "2024-07-01T00:00:00Z"
