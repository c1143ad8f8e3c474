"""XDM validation over the schema shapes the Schema Registry returns."""

from __future__ import annotations

from emulator.runner import validate_xdm
from emulator.runner.xdm import check_xdm

EVENT_CLASS = {
    "$id": "https://ns.adobe.com/xdm/context/experienceevent",
    "type": "object",
    "properties": {
        "_id": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "eventType": {
            "type": "string",
            "enum": ["commerce.purchases", "web.webpagedetails.pageViews"],
        },
    },
    "required": ["_id", "timestamp"],
}
TENANT_SCHEMA = {
    "$id": "https://ns.adobe.com/acme/schemas/abc",
    "title": "Capillary transactions",
    "type": "object",
    "meta:immutableTags": ["union"],
    "allOf": [
        {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
        {"$ref": "#/definitions/commerce"},
        {"$ref": "https://ns.adobe.com/acme/mixins/not-given"},
        {
            "properties": {
                "personalEmail": {
                    "type": "object",
                    "properties": {"address": {"type": "string", "format": "email"}},
                }
            }
        },
    ],
    "definitions": {
        "commerce": {
            "properties": {
                "productListItems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "SKU": {"type": "string"},
                            "quantity": {"type": "integer", "meta:xdmType": "int"},
                        },
                        "required": ["SKU"],
                    },
                },
                "_acme": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"storeCode": {"type": "string", "maxLength": 5}},
                },
            }
        }
    },
}  # fmt: skip
REFS = {EVENT_CLASS["$id"]: EVENT_CLASS}
GOOD = {
    "_id": "T0001",
    "timestamp": "2025-07-14T12:00:00-06:00",
    "eventType": "commerce.purchases",
    "personalEmail": {"address": "john@capillarytech.com"},
    "productListItems": [{"SKU": "sku_01", "quantity": 1}],
    "_acme": {"storeCode": "HSR"},
    "fieldTheSchemaDoesNotName": 1,
}


def test_valid_record_has_no_problems():
    assert validate_xdm(TENANT_SCHEMA, GOOD, refs=REFS) == []
    assert validate_xdm(None, {"anything": 1}) == []


def test_missing_required_field_of_the_class():
    record = {k: v for k, v in GOOD.items() if k != "timestamp"}
    assert validate_xdm(TENANT_SCHEMA, record, refs=REFS) == [
        "timestamp: required field is missing"
    ]
    # without the class document the unknown $ref is skipped, not guessed
    assert validate_xdm(TENANT_SCHEMA, record) == []


def test_wrong_types_formats_enum_and_ranges_are_each_reported():
    record = {
        **GOOD,
        "timestamp": "14/07/2025",
        "eventType": "purchase",
        "personalEmail": {"address": "not-an-email"},
        "productListItems": [{"SKU": 1, "quantity": 2**40}, {"quantity": True}],
        "_acme": {"storeCode": "TOO-LONG", "extra": 1},
    }
    problems = {(p.code, p.path) for p in check_xdm(TENANT_SCHEMA, record, refs=REFS)}
    assert problems == {
        ("SCHEMA-FORMAT", "timestamp"),
        ("SCHEMA-ENUM", "eventType"),
        ("SCHEMA-FORMAT", "personalEmail.address"),
        ("SCHEMA-TYPE", "productListItems[0].SKU"),
        ("SCHEMA-RANGE", "productListItems[0].quantity"),
        ("SCHEMA-REQUIRED", "productListItems[1].SKU"),
        ("SCHEMA-TYPE", "productListItems[1].quantity"),
        ("SCHEMA-RANGE", "_acme.storeCode"),
        ("SCHEMA-UNKNOWN-FIELD", "_acme.extra"),
    }


def test_wrong_type_message_names_both_types():
    schema = {"type": "object", "properties": {"loyaltyPoints": {"type": "integer"}}}
    assert validate_xdm(schema, {"loyaltyPoints": "1250"}) == [
        "loyaltyPoints: expected integer, got string"
    ]
    assert validate_xdm(schema, {"loyaltyPoints": 1250.0}) == []


def test_full_view_with_properties_at_the_top_and_required_in_nested_objects():
    full = {
        "type": "object",
        "properties": {
            "identityMap": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                },
            },
        },
    }  # fmt: skip
    assert validate_xdm(full, {"identityMap": {"Email": [{"id": "a@b.co"}]}}) == []
    assert validate_xdm(full, {"identityMap": {"Email": [{"primary": True}]}}) == [
        "identityMap.Email[0].id: required field is missing"
    ]
