"""Shipped contracts, header detection across eras, header failures, user overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill.contracts import (
    ContractLoadError,
    DetectionError,
    clean_header,
    detect,
    load_contracts,
)
from tests.backfill.validate.helpers import FIXTURES, run, write

LEGACY = (
    "id,Description,Seller Message,Created (UTC),Amount,Amount Refunded,Currency,Converted Amount,"
    "Converted Amount Refunded,Fee,Tax,Converted Currency,Mode,Status,Statement Descriptor,Customer ID,"
    "Customer Description,Customer Email,Captured,Card ID,Card Last4,Card Brand,Card Funding,Card Exp Month,"
    "Card Exp Year,Card Name,Card Address Line1,Card Address Line2,Card Address City,Card Address State,"
    "Card Address Country,Card Address Zip,Card Issue Country,Card Fingerprint,Card CVC Status,"
    "Card AVS Zip Status,Card AVS Line1 Status,Card Tokenization Method,Disputed Amount,Dispute Status,"
    "Dispute Reason,Dispute Date (UTC),Dispute Evidence Due (UTC),Invoice ID,Payment Source Type,"
    "Destination,Transfer,Interchange Costs,Merchant Service Charge,Transfer Group,PaymentIntent ID"
)


def test_every_shipped_contract_loads_and_unconfirmed_ones_say_so() -> None:
    contracts = load_contracts()
    assert {"stripe_payments", "capillary_customers", "capillary_transactions"} <= set(contracts)
    for c in contracts.values():
        if c.kind.startswith("capillary") or c.kind == "stripe_refunds":
            assert not c.confirmed
            text = (Path("config/contracts") / f"{c.kind}.toml").read_text(encoding="utf-8")
            assert "UNCONFIRMED" in text


@pytest.mark.parametrize(
    ("path", "era"),
    [
        (FIXTURES / "stripe_payments" / "all_columns_clean.csv", "all_columns"),
        (FIXTURES / "stripe_payments" / "default_defects.csv", "default"),
    ],
)
def test_eras_detected(path: Path, era: str) -> None:
    header = clean_header(path.read_text(encoding="utf-8-sig").splitlines()[0].split(","))
    m, why = detect(load_contracts(), header)
    assert (m.contract.kind, m.era) == ("stripe_payments", era)
    assert why.startswith("detected from the header")


def test_legacy_era_maps_to_the_same_canonical_columns(tmp_path: Path) -> None:
    values = {
        "id": "ch_9",
        "Created (UTC)": "2019-05-01 10:00",
        "Amount": "10.00",
        "Amount Refunded": "0.00",
        "Currency": "usd",
        "Captured": "true",
        "Status": "Paid",
        "Mode": "Test",
        "Tax": "0.00",
    }
    cols = LEGACY.split(",")
    live = dict(values, id="ch_8", Mode="Live")
    rows = [",".join(v.get(c, "") for c in cols) for v in (values, live)]
    p = write(tmp_path, "legacy.csv", LEGACY + "\n" + "\n".join(rows) + "\n")
    (res,) = run([p], tmp_path / "out")
    assert res.era == "legacy" and "'Created (UTC)'" in res.why
    assert res.excluded == {"test_mode": 1} and res.rows_valid == 1
    import polars as pl

    df = pl.read_csv(res.valid_path, infer_schema=False)  # type: ignore[arg-type]
    assert df["created"].to_list() == ["1556704800"] and "taxes_on_fee" in df.columns


def test_missing_required_columns_fail_the_header_check(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "p.csv",
        "id,Created date (UTC),Amount,Currency,Status\nch_1,2026-01-01 10:00,1.00,usd,Paid\n",
    )
    (res,) = run([p], tmp_path / "out", kind="stripe_payments")
    assert res.status == "header"
    assert "Amount Refunded" in res.message and "Captured" in res.message and "p.csv" in res.message


def test_unknown_header_names_the_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "p.csv", "foo,bar\n1,2\n")
    (res,) = run([p], tmp_path / "out")
    assert res.status == "header" and "no contract fits" in res.message
    assert res.unknown_columns == ["foo", "bar"]


def test_names_in_another_case_or_spacing_match_and_the_reason_says_so(tmp_path: Path) -> None:
    header = "ID,CREATED  DATE (UTC),amount,Amount Refunded,Currency,Captured,Status"
    row = "ch_1,2026-01-05 10:00:00,10.00,0,usd,true,Paid"
    p = write(tmp_path, "p.csv", f"{header}\n{row}\n")
    (res,) = run([p], tmp_path / "out", account_timezone="America/New_York")
    assert (res.kind, res.status, res.rows_valid, res.era) == (
        "stripe_payments",
        "validated",
        1,
        "default",
    )
    assert "ignoring case and spacing 'ID', 'CREATED  DATE (UTC)', 'amount'" in res.why
    valid = (tmp_path / "out" / "p.valid.csv").read_text(encoding="utf-8").splitlines()
    cols = dict(zip(valid[0].split(","), valid[1].split(","), strict=True))
    # "(UTC)" in the header is read in any case: 10:00 UTC, not New York time
    assert (cols["id"], cols["created"], cols["amount"]) == ("ch_1", "1767607200", "1000")


def test_a_name_as_written_wins_over_one_that_only_folds_to_it() -> None:
    contracts = load_contracts()
    header = ["id", "Created date (UTC)", "AMOUNT", "Amount", "Amount Refunded", "Currency"]
    m, _ = detect(contracts, [*header, "Captured", "Status"], "stripe_payments")
    assert m.columns["amount"] == 3 and not m.ignoring_case and "AMOUNT" in m.unknown


def test_two_names_folding_alike_match_neither_loosely() -> None:
    contracts = load_contracts()
    header = ["id", "Created date (UTC)", "AMOUNT", "amount", "Amount Refunded", "Currency"]
    m, _ = detect(contracts, [*header, "Captured", "Status"], "stripe_payments")
    assert "amount" not in m.columns and m.missing_required == ["Amount"]


def test_unknown_kind() -> None:
    with pytest.raises(DetectionError, match="unknown kind"):
        detect(load_contracts(), ["id"], "nope")


def test_user_extension_adds_aliases_without_code(tmp_path: Path) -> None:
    d = tmp_path / "contracts"
    d.mkdir()
    (d / "mine.toml").write_text(
        'extends = "capillary_customers"\nmax_reject_rate = 0.5\n[aliases]\nregistered_on = ["Member Since"]\nuser_id = "Customer Number"\n'
    )
    contracts = load_contracts(d)
    c = contracts["capillary_customers"]
    assert "Member Since" in c.column("registered_on").aliases and c.max_reject_rate == 0.5
    m, _ = detect(contracts, ["Customer Number", "email", "Member Since"])
    assert m.contract.kind == "capillary_customers" and m.ok


def test_bad_user_contract_is_reported(tmp_path: Path) -> None:
    d = tmp_path / "contracts"
    d.mkdir()
    (d / "bad.toml").write_text(
        'extends = "capillary_customers"\n[aliases]\nnot_a_column = ["x"]\n'
    )
    with pytest.raises(ContractLoadError, match="not_a_column"):
        load_contracts(d)
