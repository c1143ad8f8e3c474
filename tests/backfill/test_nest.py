"""`backfill.nest`: bills joined with their line items as JSON lines, orphans set aside."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from backfill.nest import ORPHAN_REASON, NestError, jsonl_path, nest_bills, orphans_path

BILLS = (
    "bill_id,bill_number,external_id,bill_amount\n1,A-1,007001,1180.00\n2,A-2,,499.5\n3,A-3,x,0\n"
)
ITEMS_JAN = (
    "line_item_id,bill_id,item_code,description,quantity,amount\n"
    '10,1,SKU-1,"Shirt, blue",2,1100.00\n'
    "11,2,000987,Gift wrap,1.5,0\n"
    "12,9,SKU-9,Orphan,1,5\n"
)
ITEMS_FEB = "line_item_id,bill_id,item_code,description,quantity,amount\n13,1,SKU-3,Socks,1,80\n"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_bills_carry_their_line_items_from_every_file_and_orphans_are_set_aside(tmp_path: Path):
    bills = _write(tmp_path, "tx.abc.valid.csv", BILLS)
    jan = _write(tmp_path, "li.jan.valid.csv", ITEMS_JAN)
    feb = _write(tmp_path, "li.feb.valid.csv", ITEMS_FEB)

    result = nest_bills([bills], [jan, feb])

    nested = result.bills[bills]
    assert nested.jsonl_path == jsonl_path(bills) == tmp_path / "tx.abc.valid.jsonl"
    assert (nested.bills, nested.line_items) == (3, 3)
    records = [json.loads(line) for line in nested.jsonl_path.read_text().splitlines()]
    assert [r["bill_id"] for r in records] == ["1", "2", "3"]  # the bills file's order
    first, second, third = records
    # values as the valid CSV gives them: leading zeros and decimals kept, empty is null
    assert first["external_id"] == "007001" and first["bill_amount"] == "1180.00"
    assert second["external_id"] is None
    assert [i["line_item_id"] for i in first["line_items"]] == ["10", "13"]
    assert first["line_items"][0] == {
        "line_item_id": "10",
        "bill_id": "1",
        "item_code": "SKU-1",
        "description": "Shirt, blue",
        "quantity": "2",
        "amount": "1100.00",
    }
    assert second["line_items"][0]["item_code"] == "000987"
    assert third["line_items"] == []

    jan_out, feb_out = result.line_items[jan], result.line_items[feb]
    assert (jan_out.nested, jan_out.orphans) == (2, 1)
    assert (feb_out.nested, feb_out.orphans, feb_out.orphans_path) == (1, 0, None)
    assert jan_out.orphans_path == orphans_path(jan) == tmp_path / "li.jan.orphans.csv"
    with jan_out.orphans_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {
            "line_item_id": "12",
            "bill_id": "9",
            "item_code": "SKU-9",
            "description": "Orphan",
            "quantity": "1",
            "amount": "5",
            "reason": ORPHAN_REASON,
        }
    ]
    assert not orphans_path(feb).exists()


def test_a_bill_id_in_several_bills_files_takes_its_line_items_into_each(tmp_path: Path):
    a = _write(tmp_path, "a.valid.csv", "bill_id,n\n1,a\n")
    b = _write(tmp_path, "b.valid.csv", "bill_id,n\n2,b\n")
    items = _write(tmp_path, "li.valid.csv", "line_item_id,bill_id\n10,1\n11,2\n12,2\n")
    result = nest_bills([a, b], [items])
    assert (result.bills[a].line_items, result.bills[b].line_items) == (1, 2)
    assert (result.line_items[items].nested, result.line_items[items].orphans) == (3, 0)


def test_a_file_without_bill_id_is_refused_naming_it(tmp_path: Path):
    bills = _write(tmp_path, "tx.valid.csv", BILLS)
    items = _write(tmp_path, "li.valid.csv", "line_item_id,bill\n10,1\n")
    with pytest.raises(NestError, match=r"li\.valid\.csv: no `bill_id` column"):
        nest_bills([bills], [items])
    assert not jsonl_path(bills).exists()


def test_line_item_files_with_other_columns_are_refused(tmp_path: Path):
    bills = _write(tmp_path, "tx.valid.csv", BILLS)
    jan = _write(tmp_path, "jan.valid.csv", ITEMS_JAN)
    odd = _write(tmp_path, "odd.valid.csv", "bill_id,line_item_id\n1,10\n")
    with pytest.raises(NestError, match=r"odd\.valid\.csv: columns"):
        nest_bills([bills], [jan, odd])


def test_bills_shipped_before_count_as_known_and_are_not_nested_again(tmp_path: Path):
    earlier = _write(tmp_path, "a.valid.csv", "bill_id,n\n1,a\n")
    shipped = nest_bills([earlier], []).bills[earlier].jsonl_path
    later = _write(tmp_path, "b.valid.csv", "bill_id,n\n2,b\n")
    items = _write(tmp_path, "li.valid.csv", "line_item_id,bill_id\n10,1\n11,2\n12,7\n")
    result = nest_bills([later], [items], shipped_bills=[shipped])
    assert result.bills[later].line_items == 1
    assert (result.line_items[items].nested, result.line_items[items].orphans) == (2, 1)
