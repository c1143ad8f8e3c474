"""The settings models: one section per concern, secrets typed as SecretStr.

Precedence: environment over file over defaults. Environment names are the section path
upper-cased and joined with `__` under the prefix `AEP_BRIDGE_`, e.g.
`AEP_BRIDGE_PLATFORM__CLIENT_SECRET`. Secrets (every `SecretStr` field) are read from the
environment only; `config.loader` refuses them in a TOML file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.keys import KeyProblem, check_rsa_pem

__all__ = [
    "ENV_PREFIX",
    "AepPullSettings",
    "BackfillSettings",
    "FlowsSettings",
    "PlatformSettings",
    "Settings",
    "SftpSettings",
    "SmokeSettings",
]

ENV_PREFIX = "AEP_BRIDGE_"
ENV_NESTED_DELIMITER = "__"

PlatformMode = Literal["embedded", "http", "remote"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class PlatformSettings(_Section):
    """Where Platform is (the embedded emulator, one served over HTTP, or real AEP) and who
    the tool is there (org, sandbox, OAuth server-to-server client)."""

    mode: PlatformMode = "embedded"
    """`embedded`: the emulator in-process; `http`: an emulator served by `aep-emulator serve`;
    `remote`: real Adobe Experience Platform."""
    gateway_url: str = "https://platform.adobe.io"
    """Base URL of the Platform gateway (Flow Service, Catalog, Schema Registry, ...)."""
    ims_url: str = "https://ims-na1.adobelogin.com"
    """Base URL of Adobe IMS; the token comes from `{ims_url}/ims/token/v3`."""
    inlet_url: str = "https://dcs.adobedc.net"
    """Base URL of the streaming inlet host (Data Collection Core Service)."""
    org_id: str = ""
    """IMS organisation id, sent as `x-gw-ims-org-id`."""
    sandbox: str = "prod"
    """Sandbox name, sent as `x-sandbox-name`."""
    client_id: str = ""
    """OAuth server-to-server client id, also sent as `x-api-key`."""
    scopes: list[str] = Field(
        default_factory=lambda: [
            "openid",
            "AdobeID",
            "read_organizations",
            "additional_info.projectedProductContext",
            "session",
        ]
    )
    """IMS scopes, sent comma-separated."""
    client_secret: SecretStr | None = None
    """OAuth client secret. Environment only: AEP_BRIDGE_PLATFORM__CLIENT_SECRET."""
    timeout_s: float = 30.0
    """Timeout of one HTTP request, in seconds."""
    max_attempts: int = Field(default=5, ge=1)
    """Attempts per request for retryable failures (connect errors, 429, 500, 502-504)."""
    deadline_s: float = Field(default=120.0, gt=0)
    """Total time one call may spend across its retries, in seconds."""

    @field_validator("gateway_url", "ims_url", "inlet_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("org_id")
    @classmethod
    def _org_id(cls, value: str) -> str:
        if value and not value.endswith("@AdobeOrg"):
            raise ValueError(
                "an IMS org id ends with '@AdobeOrg' (Developer Console: Organization ID)"
            )
        return value

    @field_validator("sandbox")
    @classmethod
    def _sandbox(cls, value: str) -> str:
        if not value or value != value.lower() or not value.replace("-", "").isalnum():
            raise ValueError("sandbox names are lower case letters, digits and '-' (e.g. 'prod')")
        return value


class SftpSettings(_Section):
    """The SFTP server the uploader writes to (as this machine reaches it)."""

    host: str = "127.0.0.1"
    """Host name of the landing zone. In embedded mode, the embedded server's address."""
    port: int = Field(default=22, ge=0, le=65535)
    """Port; 0 in embedded mode picks a free port."""
    user: str = "aep"
    """User name."""
    key_path: Path | None = None
    """Private key file (Ed25519, RSA or ECDSA)."""
    key_passphrase: SecretStr | None = None
    """Passphrase of the key. Environment only: AEP_BRIDGE_SFTP__KEY_PASSPHRASE."""
    password: SecretStr | None = None
    """Password, when no key is used. Environment only: AEP_BRIDGE_SFTP__PASSWORD."""
    known_hosts: Path | None = None
    """known_hosts file the server's host key is verified against (never auto-added)."""
    remote_root: str = "/landing"
    """Directory on the server the files are shipped into."""
    connections: int = Field(default=4, ge=1, le=64)
    """Most connections used (one file per connection at a time); ship measures the round trip
    and opens only as many as fill the link (1 on loopback)."""
    verify: Literal["sha256", "size"] = "sha256"
    """Check after upload: read back and compare sha256, or compare the size only."""
    gzip: bool = False
    """Compress on the way (AEP's SFTP source reads `compressionType: gzip`)."""
    timeout_s: float = 30.0
    """Connect and per-operation timeout, in seconds."""
    keepalive_s: int = 15
    """SSH keepalive interval, in seconds."""
    max_attempts: int = Field(default=5, ge=1)
    """Reconnect attempts per file after a dropped connection."""


class AepPullSettings(_Section):
    """The SFTP server as AEP pulls from it: usually another host, port and path than the
    uploader's, and AEP's own credential (password, or an RSA private key in PEM form)."""

    host: str | None = None
    """Host as AEP reaches it; defaults to `sftp.host`."""
    port: int | None = None
    """Port as AEP reaches it; defaults to `sftp.port`."""
    folder_path: str | None = None
    """Folder AEP reads (`folderPath`); defaults to `sftp.remote_root`."""
    username: str | None = None
    """User AEP logs in as; defaults to `sftp.user`."""
    password: SecretStr | None = None
    """AEP's password. Environment only: AEP_BRIDGE_AEP_PULL__PASSWORD."""
    private_key: SecretStr | None = None
    """AEP's RSA private key in PEM form. Environment only: AEP_BRIDGE_AEP_PULL__PRIVATE_KEY."""
    passphrase: SecretStr | None = None
    """Passphrase of that key. Environment only: AEP_BRIDGE_AEP_PULL__PASSPHRASE."""

    @model_validator(mode="after")
    def _password_or_rsa_key(self) -> AepPullSettings:
        """Password or key, not both; the key must be an RSA private key in PEM form."""
        if self.password is not None and self.private_key is not None:
            raise ValueError(
                "set either AEP_BRIDGE_AEP_PULL__PASSWORD or AEP_BRIDGE_AEP_PULL__PRIVATE_KEY, "
                "not both (AEP's SFTP base connection takes one auth spec)"
            )
        if self.passphrase is not None and self.private_key is None:
            raise ValueError("passphrase is set but private_key is not")
        if self.private_key is not None:
            passphrase = self.passphrase.get_secret_value() if self.passphrase else None
            try:
                check_rsa_pem(self.private_key.get_secret_value(), passphrase)
            except KeyProblem as exc:
                raise ValueError(f"private_key: {exc}") from None
        return self


class BackfillSettings(_Section):
    """Validation of the historical exports."""

    input_dir: Path | None = None
    """Directory of CSV exports to migrate; unset means the bundled sample exports."""
    out_dir: Path | None = None
    """Where valid, rejects and report files go; defaults to `<state_dir>/validated`."""
    max_reject_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    """Above this share of rejected rows a file is marked failed and is never shipped."""
    encoding: str | None = None
    """Force an input encoding; unset detects UTF-8 (with or without BOM) or Windows-1252."""
    account_timezone: str = "UTC"
    """Time zone of Stripe Dashboard exports whose header does not say UTC."""
    contracts_dir: Path | None = None
    """Extra contract files that add to or override the shipped ones (by kind)."""
    cutover: str | None = None
    """ISO 8601 instant with a zone: rows created at or after it are left to the live sync
    (excluded)."""

    @field_validator("cutover")
    @classmethod
    def _cutover_is_an_instant(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 instant (e.g. 2024-07-01T00:00:00Z)"
            ) from None
        if instant.tzinfo is None:
            raise ValueError(f"{value!r} needs a time zone (e.g. 2024-07-01T00:00:00Z)")
        return value


class FlowsSettings(_Section):
    """The dataflows the tool creates."""

    prefix: str = "aep-bridge"
    """Prefix of every resource name the tool creates; the rest is the configuration key."""
    file: Path | None = None
    """The desired streaming dataflows (`aep-sync`); unset means the shipped `config/flows.toml`."""
    stripe_access_token: SecretStr | None = None
    """Stripe secret or restricted key for the Stripe base connection. Environment only:
    AEP_BRIDGE_FLOWS__STRIPE_ACCESS_TOKEN. Required in remote mode."""
    capillary_client_secret: SecretStr | None = None
    """Capillary OAuth client secret for the Capillary base connection. Environment only:
    AEP_BRIDGE_FLOWS__CAPILLARY_CLIENT_SECRET. Required in remote mode."""
    capillary_access_token: SecretStr | None = None
    """Capillary access token for the Capillary base connection. Environment only:
    AEP_BRIDGE_FLOWS__CAPILLARY_ACCESS_TOKEN. Required in remote mode."""
    apply_interval_min: float = Field(default=15.0, gt=0)
    """`aep-sync run`: minutes between two applies of the desired dataflows."""
    watch_interval_s: float = Field(default=60.0, gt=0)
    """`aep-sync run`: seconds between two looks at flow state, runs and failures."""


class SmokeSettings(_Section):
    """The end-to-end smoke test."""

    timeout_s: float = 900.0
    """How long to wait for a record to land."""
    poll_s: float = 5.0
    """Polling interval while waiting."""
    sync_validation: bool = True
    """Send the test record with `?syncValidation=true` first, so a record the schema refuses
    fails at once with DCS's reasons instead of after the landing timeout."""


class Settings(BaseSettings):
    """All settings of aep-bridge."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    state_dir: Path = Path(".aep-bridge")
    """State directory: ledger, emulator state, embedded SFTP root, development credentials."""
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    sftp: SftpSettings = Field(default_factory=SftpSettings)
    aep_pull: AepPullSettings = Field(default_factory=AepPullSettings)
    backfill: BackfillSettings = Field(default_factory=BackfillSettings)
    flows: FlowsSettings = Field(default_factory=FlowsSettings)
    smoke: SmokeSettings = Field(default_factory=SmokeSettings)
