"""Data Prep mapping: the seeds' mapping sets build the nested XDM records they describe."""

from __future__ import annotations

import json

import pytest

from emulator.runner import (
    MappingError,
    MappingSetError,
    RunInput,
    UnknownResourceError,
    execute_run,
    map_record,
    stripe_resource_schema,
    validate_mappings,
)
from tests.emulator.chains import CAPILLARY_PROFILE

# Seed 002 (Stripe tutorial): every mapping is `data.<f>` → `_{ORG_ID}.charges_data.<f>`, in this order.
CHARGE_FIELDS = [
    "id", "refunded", "disputed", "payment_method_details.card.last4", "livemode", "status",
    "payment_method_details.card.overcapture.maximum_amount_capturable", "receipt_url",
    "payment_method_details.card.fingerprint", "payment_intent",
    "payment_method_details.card.overcapture.status",
    "payment_method_details.card.network_token.used", "payment_method_details.card.funding",
    "amount", "customer", "payment_method_details.card.incremental_authorization.status",
    "payment_method_details.card.multicapture.status", "amount_captured", "payment_method",
    "object", "captured", "created", "paid", "amount_refunded", "currency",
    "payment_method_details.card.country", "payment_method_details.card.exp_year",
    "payment_method_details.card.amount_authorized", "payment_method_details.card.network",
    "payment_method_details", "payment_method_details.card.exp_month",
    "calculated_statement_descriptor", "payment_method_details.card.brand",
    "balance_transaction", "payment_method_details.card.extended_authorization.status", "outcome",
]  # fmt: skip
STRIPE_MAPPING_SET = {
    "version": 0,
    "xdmSchema": "https://ns.adobe.com/exchangesandboxcharlie/schemas/5f76be8c4e4b847fdac13ca42aa6b596a89a5b91dea48b16",
    "xdmVersion": "1.0",
    "mappings": [
        {
            "destinationXdmPath": f"_{{ORG_ID}}.charges_data.{f}",
            "sourceAttribute": f"data.{f}",
            "identity": False,
            "version": 0,
        }
        for f in CHARGE_FIELDS
    ],
}

# Seed 003 (Capillary): the mapping table, in the newer format, and the two sample payloads.
CAPILLARY_MAPPING_SET = {
    "outputSchema": {"schemaRef": {"id": "https://ns.adobe.com/t/schemas/c", "contentType": "x"}},
    "mappings": [
        {"sourceType": "ATTRIBUTE", "source": src, "destination": dst}
        for src, dst in [
            ("identityMap.email.id", "xdm:identityMap.email"),
            ("loyalty.points", "xdm:loyaltyPoints"),
            ("loyalty.tier", "xdm:loyaltyTier"),
            ("commerce.order.priceTotal", "xdm:commerce.order.priceTotal"),
            ("productLineItems.SKU", "xdm:productListItems.SKU"),
        ]
    ],
}
CAPILLARY_TRANSACTION = {
    "_id": "T0001",
    "timestamp": "2025-07-14T12:00:00-06:00",
    "identityMap": {
        "email": [
            {"authenticatedState": "ambiguous", "id": "john@capillarytech.com", "primary": True}
        ]
    },
    "commerce": {"commerceScope": {"storeCode": "HSR"}, "order": {"priceTotal": 90}},
    "productLineItems": [
        {"SKU": "sku_01", "quantity": 1, "priceTotal": 100, "name": "Kitkat", "discountAmount": 10},
        {"SKU": "sku_02", "quantity": 2, "priceTotal": 40, "name": "Tea", "discountAmount": 0},
    ],
}


def _stripe_run(since_ms: int | None = None, mapping_set=STRIPE_MAPPING_SET, fixtures=None):
    return execute_run(
        RunInput(
            flow={"id": "f"},
            flow_spec_name="RestStorageToAEP",
            base_connection={"auth": {"params": {"accessToken": "sk_test"}}},
            source_connection={"data": {"format": "json"}, "params": {"resourcePath": "charges"}},
            target_connection={"params": {"dataSetId": "d"}},
            mapping_set=mapping_set,
            target_schema=None,
            since_ms=since_ms,
            known_hosts=None,
            stripe_fixtures=fixtures,
        )
    )


def test_seed_stripe_charges_mapping_builds_the_nested_record():
    out = _stripe_run()
    assert out.failure is None
    assert (out.input_count, len(out.records), out.errors) == (3, 3, [])
    charge = out.records[0]["_{ORG_ID}"]["charges_data"]
    assert charge["id"] == "ch_test_0001"
    assert charge["amount"] == 2000
    assert charge["refunded"] is False
    card = charge["payment_method_details"]["card"]
    # sub-field mappings and the whole-object mapping of payment_method_details merge
    assert card["last4"] == "4242"
    assert card["overcapture"] == {"maximum_amount_capturable": 1000, "status": "unavailable"}
    assert card["checks"]["cvc_check"] == "pass"
    assert charge["outcome"]["risk_score"] == 20
    assert "balance_transaction" not in out.records[2]["_{ORG_ID}"]["charges_data"]  # null left out
    assert set(charge) <= {f.split(".")[0] for f in CHARGE_FIELDS}


def test_stripe_runs_read_only_objects_created_after_the_watermark():
    first = _stripe_run()
    assert first.watermark_ms == 1767225600_000 + 2 * 3600_000
    again = _stripe_run(since_ms=first.watermark_ms)
    assert (again.input_count, again.records, again.watermark_ms) == (0, [], first.watermark_ms)
    middle = _stripe_run(since_ms=1767225600_000)
    assert [r["_{ORG_ID}"]["charges_data"]["id"] for r in middle.records] == [
        "ch_test_0002",
        "ch_test_0003",
    ]


def test_stripe_fixture_directory_and_unknown_resource(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "charges.jsonl").write_text(
        json.dumps({"id": "ch_1", "object": "charge", "amount": 5, "created": 1}) + "\n{bad\n"
    )
    out = _stripe_run(fixtures=tmp_path)
    assert [r["_{ORG_ID}"]["charges_data"]["amount"] for r in out.records] == [5]
    assert [(e.line, e.code) for e in out.errors] == [(2, "JSON-SYNTAX")]
    assert out.input_count == 2
    schema = stripe_resource_schema(tmp_path, "charges")
    assert schema["properties"]["data"]["properties"]["amount"]["type"] == "integer"
    with pytest.raises(UnknownResourceError, match="invoices"):
        stripe_resource_schema(tmp_path, "invoices")


def test_shipped_stripe_schemas_follow_the_explore_response():
    charges = stripe_resource_schema(None, "charges")
    data = charges["properties"]["data"]["properties"]
    assert data["amount"] == {
        "type": "integer",
        "minimum": -9007199254740992,
        "maximum": 9007199254740991,
    }
    assert data["payment_method_details"]["properties"]["card"]["properties"]["last4"] == {
        "type": "string"
    }
    for name in ("customers", "subscriptions", "refunds", "balance_transactions", "prices"):
        assert stripe_resource_schema(None, f"/v1/{name}")["properties"]["data"]["properties"][
            "id"
        ] == {"type": "string"}


def test_seed_capillary_profile_mapping():
    record = map_record(CAPILLARY_MAPPING_SET, CAPILLARY_PROFILE)
    assert record == {
        "identityMap": {"email": [{"id": "john.doe@capillarytech.com"}]},
        "loyaltyPoints": 1250,
        "loyaltyTier": "gold",
    }


def test_seed_capillary_transaction_mapping_fans_line_items_out():
    record = map_record(CAPILLARY_MAPPING_SET, CAPILLARY_TRANSACTION)
    assert record == {
        "identityMap": {"email": [{"id": "john@capillarytech.com"}]},
        "commerce": {"order": {"priceTotal": 90}},
        "productListItems": [{"SKU": "sku_01"}, {"SKU": "sku_02"}],
    }


PROFILE_SCHEMA = {
    "type": "object",
    "allOf": [{"$ref": "#/definitions/loyalty"}],
    "definitions": {
        "loyalty": {
            "properties": {
                "_acme": {
                    "type": "object",
                    "properties": {
                        "points": {"type": "integer"},
                        "tier": {"type": "string", "enum": ["silver", "gold"]},
                        "active": {"type": "boolean"},
                        "joined": {"type": "string", "format": "date-time"},
                        "balance": {"type": "number"},
                    },
                }
            }
        }
    },
}
CSV_MAPPING = {
    "mappings": [
        {"sourceAttribute": "email", "destinationXdmPath": "personalEmail.address",
         "identity": True, "namespaceCode": "Email", "primaryIdentity": True},
        {"sourceAttribute": "points", "destinationXdmPath": "_acme.points"},
        {"sourceAttribute": "tier", "destinationXdmPath": "_acme.tier"},
        {"sourceAttribute": "active", "destinationXdmPath": "_acme.active"},
        {"sourceAttribute": "joined", "destinationXdmPath": "_acme.joined"},
        {"sourceAttribute": "balance", "destinationXdmPath": "_acme.balance"},
    ]
}  # fmt: skip


def test_flat_csv_row_converts_to_the_schema_types():
    row = {
        "email": "ana@example.com",
        "points": "1250",
        "tier": "gold",
        "active": "TRUE",
        "joined": "2025-07-14 12:00:00",
        "balance": "",
    }
    record = map_record(CSV_MAPPING, row, schema=PROFILE_SCHEMA)
    assert record == {
        "personalEmail": {"address": "ana@example.com"},
        "identityMap": {"Email": [{"id": "ana@example.com", "primary": True}]},
        "_acme": {
            "points": 1250,
            "tier": "gold",
            "active": True,
            "joined": "2025-07-14T12:00:00.000Z",
        },
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("points", "12.5"), ("points", "lots"), ("active", "maybe"), ("joined", "yesterday")],
)
def test_value_that_does_not_convert_is_a_mapping_error(field, value):
    row = {"email": "a@b.co", "points": "1", "active": "true", "joined": "", field: value}
    with pytest.raises(MappingError) as info:
        map_record(CSV_MAPPING, row, schema=PROFILE_SCHEMA)
    assert info.value.code == "MAPPING-TYPE"
    assert f"_acme.{field}" in info.value.message and value in info.value.message


def test_spec_preview_example_and_mixed_formats():
    # data-prep.yaml's PreviewRequest example (newer format)
    mapping = {
        "mappings": [
            {"sourceType": "ATTRIBUTE", "source": "id", "destination": "_id"},
            {"sourceType": "ATTRIBUTE", "source": "firstName", "destination": "person.name.firstName"},
            {"sourceType": "text/x.schema-path", "source": "lastName",
             "destination": "person.name.lastName"},
            # Customer.io seed: outputSchema with legacy items
            {"sourceAttribute": "data.identifiers.email", "destinationXdmPath": "_ext.email"},
        ]
    }  # fmt: skip
    record = map_record(
        mapping,
        {
            "id": 1234,
            "firstName": "Jim",
            "lastName": "Seltzer",
            "data": {"identifiers": {"email": "j@x.io"}},
        },
    )
    assert record == {
        "_id": 1234,
        "person": {"name": {"firstName": "Jim", "lastName": "Seltzer"}},
        "_ext": {"email": "j@x.io"},
    }


def test_expressions_and_constants():
    mapping = {
        "mappings": [
            {"sourceType": "EXPRESSION", "source": 'concat(upper(first), " ", trim(last))',
             "destination": "person.name.fullName"},
            {"sourceType": "EXPRESSION", "source": 'iif(points >= 1000, "gold", "silver")',
             "destination": "_acme.tier"},
            {"sourceType": "EXPRESSION", "source": "to_integer(points) * 2",
             "destination": "_acme.double"},
            {"sourceType": "EXPRESSION", "source": 'nvl(nick, "none")', "destination": "_acme.nick"},
            {"sourceType": "EXPRESSION", "source": "lower(sha256(email))",
             "destination": "_acme.hash"},
            {"sourceType": "EXPRESSION", "source": 'date(day, "yyyy-MM-dd")',
             "destination": "_acme.day"},
            {"sourceType": "CONSTANT", "source": "capillary", "destination": "_acme.origin"},
            {"sourceType": "STATIC", "source": "v1", "destination": "_acme.version"},
        ]
    }  # fmt: skip
    row = {"first": "ana", "last": " Lee ", "points": 1500, "email": "a@b.co", "day": "2025-01-02"}
    out = map_record(mapping, row)
    assert out["person"] == {"name": {"fullName": "ANA Lee"}}
    assert out["_acme"]["tier"] == "gold"
    assert out["_acme"]["double"] == 3000
    assert out["_acme"]["nick"] == "none"
    assert len(out["_acme"]["hash"]) == 64
    assert out["_acme"]["day"] == "2025-01-02T00:00:00.000Z"
    assert (out["_acme"]["origin"], out["_acme"]["version"]) == ("capillary", "v1")


def test_expression_failing_on_a_value_is_a_row_error():
    mapping = {
        "mappings": [
            {"sourceType": "EXPRESSION", "source": "to_integer(points)", "destination": "p"}
        ]
    }
    with pytest.raises(MappingError) as info:
        map_record(mapping, {"points": "many"})
    assert info.value.code == "MAPPING-EXPRESSION"
    assert "to_integer" in info.value.message


@pytest.mark.parametrize(
    ("source", "code", "needle"),
    [
        ("frobnicate(a)", "MAPPING-FUNCTION-UNKNOWN", "unknown function frobnicate()"),
        ("concat(a, ", "MAPPING-EXPRESSION-SYNTAX", "unexpected end"),
        ('concat(a "b")', "MAPPING-EXPRESSION-SYNTAX", "expected ',' or ')'"),
    ],
)
def test_broken_expression_is_a_mapping_set_error(source, code, needle):
    mapping = {"mappings": [{"sourceType": "EXPRESSION", "source": source, "destination": "x"}]}
    with pytest.raises(MappingSetError) as info:
        map_record(mapping, {"a": 1})
    assert info.value.code == code
    assert needle in info.value.message


def test_unusable_mapping_set_fails_the_run_not_each_row():
    broken = {"mappings": [{"sourceType": "EXPRESSION", "source": "nope(x)", "destination": "x"}]}
    out = _stripe_run(mapping_set=broken)
    assert out.failure is not None and "unknown function nope()" in out.failure
    assert (out.records, out.errors, out.input_count) == ([], [], 0)
    with pytest.raises(MappingSetError, match="unknown sourceType"):
        map_record({"mappings": [{"sourceType": "MAGIC", "source": "a", "destination": "b"}]}, {})
    with pytest.raises(MappingSetError, match="has no destination"):
        map_record({"mappings": [{"source": "a"}]}, {})


def test_no_mapping_set_passes_records_through_with_dotted_keys_nested():
    assert map_record(None, {"person.name.firstName": "Ana", "_id": "1", "empty": ""}) == {
        "person": {"name": {"firstName": "Ana"}},
        "_id": "1",
    }


def test_validate_mappings_names_each_broken_item():
    results = validate_mappings(
        [
            {"sourceType": "ATTRIBUTE", "source": "a", "destination": "b"},
            {"sourceType": "EXPRESSION", "source": "nope(a)", "destination": "c"},
            {"sourceAttribute": "a"},
        ]
    )
    assert results[0] is None
    assert results[1] is not None and results[1].code == "MAPPING-FUNCTION-UNKNOWN"
    assert results[2] is not None and "mappings[2]" in results[2].message
