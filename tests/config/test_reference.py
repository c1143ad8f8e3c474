"""The configuration reference is generated from the models and kept in docs/config.md."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from config.reference import render_reference
from config.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_docs_config_md_is_what_the_models_say() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        "docs/config.md is stale: run `.venv/bin/python -m config.reference > docs/config.md`"
    )


def test_every_setting_is_documented() -> None:
    text = render_reference()
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                assert field.description, f"{section}.{name} has no docstring"
                assert f"`{section}.{name}`" in text
        else:
            assert info.description, f"{section} has no docstring"
    assert "AEP_BRIDGE_PLATFORM__CLIENT_SECRET" in text
