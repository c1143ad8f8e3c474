"""Render the configuration reference (Markdown) from the settings models' docstrings.

`python -m config.reference > docs/config.md` regenerates the README's reference; a test keeps
the committed file equal to what the models say, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from config.loader import CONFIG_ENV_VAR, env_name
from config.settings import Settings

__all__ = ["render_reference"]

HEADER = f"""# Configuration reference

Generated from `config/settings.py` by `python -m config.reference`; do not edit by hand.

Where the file comes from: `--config PATH`, else `${CONFIG_ENV_VAR}`, else the shipped
`config/local.toml` (the embedded default). Every setting can be overridden by the environment
variable shown; the environment wins over the file, the file over the defaults. Secrets are read
from the environment only: a secret written into the TOML file is refused, naming the variable.
A file with problems prints each with its key path and the command exits 2.
"""


def _type_name(annotation: Any) -> str:
    if annotation is SecretStr:
        return "secret"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is not None and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return " | ".join(_type_name(a) for a in inner) + " (optional)"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if str(origin).endswith("Literal"):
        return " | ".join(f"`{a}`" for a in args)
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _default(info: FieldInfo) -> str:
    if _is_secret(info.annotation):
        return "(environment only)"
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return "(required)"
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value, default=str)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(name: str, model: type[BaseModel]) -> list[str]:
    lines = [f"## `[{name}]`", ""]
    if model.__doc__:
        lines += [" ".join(model.__doc__.split()), ""]
    lines += ["| key | type | default | environment variable | meaning |", "|---|---|---|---|---|"]
    for field_name, info in model.model_fields.items():
        lines.append(
            f"| `{name}.{field_name}` | {_cell(_type_name(info.annotation))} | {_default(info)} "
            f"| `{env_name((name, field_name))}` | {_cell(info.description or '')} |"
        )
    return [*lines, ""]


def render_reference() -> str:
    """The whole reference as Markdown."""
    out = [
        HEADER,
        "## Top level",
        "",
        "| key | type | default | environment variable | meaning |",
        "|---|---|---|---|---|",
    ]
    sections: list[tuple[str, type[BaseModel]]] = []
    for field_name, info in Settings.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections.append((field_name, ann))
            continue
        out.append(
            f"| `{field_name}` | {_cell(_type_name(ann))} | {_default(info)} "
            f"| `{env_name((field_name,))}` | {_cell(info.description or '')} |"
        )
    out.append("")
    for name, model in sections:
        out += _section(name, model)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_reference())
