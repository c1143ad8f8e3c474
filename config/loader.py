"""Load the settings: TOML file, then the environment on top; report every problem at once.

Where the file comes from: `--config PATH`, else `$AEP_BRIDGE_CONFIG`, else the shipped
`config/local.toml` (the embedded default). Secrets are refused in the file with the name of
the environment variable to use instead; every validation problem is listed with its key path.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

__all__ = ["CONFIG_ENV_VAR", "SHIPPED_DEFAULT", "ConfigError", "load_settings", "secret_paths"]

CONFIG_ENV_VAR = "AEP_BRIDGE_CONFIG"
SHIPPED_DEFAULT = Path(__file__).with_name("local.toml")


@dataclass
class ConfigError(Exception):
    """The configuration could not be loaded: every problem, each with its key path."""

    source: str
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"invalid configuration ({self.source}):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return SecretStr in getattr(annotation, "__args__", ())


def secret_paths(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Yield the key path of every SecretStr field of a settings model, recursively."""
    for name, info in model.model_fields.items():
        ann = info.annotation
        if _is_secret(ann):
            yield (*prefix, name)
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from secret_paths(ann, (*prefix, name))


def env_name(path: tuple[str, ...]) -> str:
    """The environment variable that sets the setting at `path`."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(p.upper() for p in path)


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class _FileSource(PydanticBaseSettingsSource):
    """The parsed TOML file as a settings source (below the environment)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _settings_class(data: dict[str, Any]) -> type[Settings]:
    class _Loaded(Settings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid"
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (env_settings, _FileSource(settings_cls, data))

    return _Loaded


def resolve_path(path: Path | None) -> Path:
    """The configuration file to read, by the documented precedence."""
    if path is not None:
        return path
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        return Path(env)
    return SHIPPED_DEFAULT


def _set_in_environment(path: tuple[str, ...]) -> str | None:
    """The environment variable that set the value at `path`, if one did."""
    for depth in range(len(path), 0, -1):
        name = env_name(path[:depth])
        if name in os.environ:
            return name
    return None


def _environment_problem(exc: SettingsError) -> str:
    """A problem line for an environment value pydantic-settings could not parse at all."""
    section = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    start = env_name((section,)) if section else ENV_PREFIX
    names = sorted(n for n in os.environ if n.upper().startswith(start.upper()))
    return (
        f"{section or '(environment)'}: cannot parse {', '.join(names) or 'an environment value'}"
        "; lists and tables are written as JSON, e.g. "
        """AEP_BRIDGE_PLATFORM__SCOPES='["openid", "AdobeID"]'"""
    )


def load_settings(path: Path | None = None) -> Settings:
    """Read the configuration file, apply the environment, validate.

    Raises:
        ConfigError: listing every problem with its key path.
    """
    file = resolve_path(path)
    source = str(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None

    problems = [
        f"{'.'.join(p)}: secrets are not read from files; set the environment variable "
        f"{env_name(p)} instead"
        for p in secret_paths()
        if _lookup(data, p)
    ]
    try:
        settings = _settings_class(data)()
    except SettingsError as exc:
        problems.append(_environment_problem(exc))
        raise ConfigError(source, problems) from None
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            var = _set_in_environment(tuple(str(x) for x in err["loc"]))
            where = f" (from the environment variable {var})" if var else ""
            problems.append(f"{loc}: {err['msg']}{where}")
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return settings
