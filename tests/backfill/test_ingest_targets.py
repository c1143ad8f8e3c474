"""Targets: what each export kind becomes in AEP, and bad mapping files named clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backfill.contracts.loader import load_contracts
from backfill.targets import TargetError, target_for

CONTRACT = load_contracts(None)["stripe_payments"]


def test_a_mapping_file_replaces_the_derived_mapping(tmp_path: Path) -> None:
    item = {"sourceType": "ATTRIBUTE", "source": "id", "destination": "_{TENANT}.x.id"}
    (tmp_path / "stripe_payments.json").write_text(json.dumps({"mappings": [item]}))
    target = target_for(CONTRACT, mappings_dirs=(tmp_path,))
    assert target.mappings == [item]
    assert target.mapping_body("s", "acme")["mappings"][0]["destination"] == "_acme.x.id"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"mappings": [', "not valid JSON"),
        ('{"fields": {}}', "mappings"),
        ('{"mappings": [{"source": "id"}]}', "destination"),
        ("[]", "JSON object"),
    ],
)
def test_a_bad_mapping_file_is_an_error_naming_it(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "stripe_payments.json"
    path.write_text(text)
    with pytest.raises(TargetError) as info:
        target_for(CONTRACT, mappings_dirs=(tmp_path,))
    assert str(path) in str(info.value) and why in str(info.value)
