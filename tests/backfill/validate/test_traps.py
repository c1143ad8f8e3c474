"""The polars 2.1 traps named in issue 4: casts that do not validate, datetimes that roll over.

The first test of each pair shows the trap in polars itself (if polars ever fixes it, the test
says so); the second shows the validator checks the text before any cast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from backfill.validate import parse
from tests.backfill.validate.helpers import run, write

HEADER = "id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status\n"


def test_polars_decimal_cast_does_not_validate() -> None:
    s = pl.Series(["29.905", "1e3"])
    got = s.cast(pl.Decimal(10, 2), strict=True).to_list()
    assert [str(v) for v in got] == ["29.90", "1000.00"]  # silently truncated / accepted


def test_polars_strptime_rolls_over_and_accepts_unpadded() -> None:
    s = pl.Series(["2024-01-05 23:59:60", "2024-1-5 1:2:3"])
    got = s.str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False).to_list()
    assert got[0] is not None and got[0].day == 6  # 23:59:60 became the next day
    assert got[1] is not None  # unpadded text accepted


@pytest.mark.parametrize(
    ("amount", "currency", "rule"),
    [
        ("29.905", "usd", "money_scale"),
        ("1e3", "usd", "number_format"),
        ("5.", "usd", "number_format"),
        (".5", "usd", "number_format"),
        ("5.1230", "usd", "money_scale"),
        ("12.5", "jpy", "money_scale"),
        ("5.1234", "kwd", "money_scale"),
        ("1,000.00", "usd", "number_format"),
        ("12,50", "eur", "number_format"),
        ("-5.00", "usd", "negative"),
        ("99999999999999999.00", "usd", "money_range"),
        (" ", "usd", "required_value"),
    ],
)
def test_amount_text_checked_before_conversion(
    tmp_path: Path, amount: str, currency: str, rule: str
) -> None:
    p = write(
        tmp_path, "p.csv", HEADER + f'ch_1,2026-01-05 10:00:00,"{amount}",0,{currency},true,Paid\n'
    )
    (res,) = run([p], tmp_path / "out")
    assert res.rejected_by_rule == {rule: 1}


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("29.90", "usd", "2990"),
        ("29.900", "usd", "2990"),
        ("0.07", "usd", "7"),
        ("5000", "jpy", "5000"),
        ("5000.00", "jpy", "5000"),
        ("5.120", "kwd", "5120"),
        ("1061.86", "eur", "106186"),
        ("3", "usd", "300"),
        ("5.000000", "usd", "500"),
        ("999999999999.99", "usd", "99999999999999"),
    ],
)
def test_minor_units_are_exact(tmp_path: Path, amount: str, currency: str, minor: str) -> None:
    p = write(
        tmp_path, "p.csv", HEADER + f"ch_1,2026-01-05 10:00:00,{amount},0,{currency},true,Paid\n"
    )
    (res,) = run([p], tmp_path / "out")
    assert res.rows_valid == 1
    assert pl.read_csv(res.valid_path, infer_schema=False)["amount"].to_list() == [minor]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("created", "rule"),
    [
        ("2026-01-05 23:59:60", "datetime_invalid"),
        ("2026-02-30 10:00:00", "datetime_invalid"),
        ("2026-01-05 24:00:00", "datetime_invalid"),
        ("2026-1-5 1:2:3", "datetime_format"),
        ("8/6/2026 12:00", "datetime_format"),
        ("2026-01-05T10:00:00", "datetime_format"),
        ("2010-12-31 23:59", "datetime_too_early"),
    ],
)
def test_datetime_text_checked_before_parsing(tmp_path: Path, created: str, rule: str) -> None:
    p = write(tmp_path, "p.csv", HEADER + f"ch_1,{created},1.00,0,usd,true,Paid\n")
    (res,) = run([p], tmp_path / "out")
    assert res.rejected_by_rule == {rule: 1}


def test_minute_precision_and_account_time_zone(tmp_path: Path) -> None:
    # A header without "(UTC)" means the account's zone (settings.backfill.account_timezone).
    text = "id,Created date,Amount,Amount Refunded,Currency,Captured,Status\nch_1,2026-07-01 12:00,1.00,0,usd,true,Paid\n"
    p = write(tmp_path, "p.csv", text)
    (res,) = run([p], tmp_path / "out", account_timezone="Europe/Berlin")
    created = pl.read_csv(res.valid_path, infer_schema=False)["created"].to_list()  # type: ignore[arg-type]
    ten_utc = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST
    assert created == [str(int(ten_utc.timestamp()))]


def test_parse_helpers_directly() -> None:
    df = pl.DataFrame({"t": ["1,234.50", "1234", "1.234,50"]})
    got = df.select(
        en=parse.normalise_number(pl.col("t"), "en"), de=parse.normalise_number(pl.col("t"), "de")
    )
    assert got["en"].to_list() == ["1234.50", "1234", None]
    assert got["de"].to_list() == [None, "1234", "1234.50"]


def test_multiple_of_agrees_with_integer_modulo() -> None:
    import random

    rng = random.Random(4)
    values = [0, 10, 15, -20, -25, 10**15, 10**15 - 1, -(10**15) + 10, 999_999_999_999_990]
    values += [rng.randint(-(10**15), 10**15) for _ in range(50_000)]
    values += [rng.randint(-(10**6), 10**6) * 1000 for _ in range(10_000)]
    df = pl.DataFrame({"v": values}, schema={"v": pl.Int64})
    for k in (1, 10, 100, 1000):
        got = df.select(parse.multiple_of(pl.col("v"), k)).to_series().to_list()
        assert got == [v % k == 0 for v in values], k


@pytest.mark.parametrize(
    ("local", "why"),
    [("2026-03-29 02:30", "skipped"), ("2026-10-25 02:30", "repeated")],
)
def test_a_local_time_clocks_skip_or_repeat_is_named_as_such(
    tmp_path: Path, local: str, why: str
) -> None:
    """In the account's zone 02:30 does not exist on 29 March 2026 and happens twice on 25
    October: neither is one instant, and the message says that, not just 'not real'."""
    text = f"id,Created date,Amount,Amount Refunded,Currency,Captured,Status\nch_1,{local},1.00,0,usd,true,Paid\n"
    p = write(tmp_path, "p.csv", text)
    (res,) = run([p], tmp_path / "out", account_timezone="Europe/Berlin")
    assert res.rejected_by_rule == {"datetime_invalid": 1}, why
    msg = pl.read_csv(res.rejects_path, infer_schema=False)["message"][0]  # type: ignore[arg-type]
    assert "a local time that clocks skip or repeat" in msg and "Europe/Berlin" in msg


def test_an_int_too_long_for_64_bits_says_so(tmp_path: Path) -> None:
    header = (
        "user_id,first_name,last_name,email,mobile,customer_external_id,registered_on,"
        "loyalty_points,lifetime_points,auto_update_time_loyalty\n"
    )
    row = "50001,Ravi,Shah,a@example.com,,,2023-11-02 08:15:00,10,1010,9223372036854775807\n"
    p = write(tmp_path, "members.csv", header + row)
    (res,) = run([p], tmp_path / "out", kind="capillary_customers")
    msg = pl.read_csv(res.rejects_path, infer_schema=False)["message"].to_list()  # type: ignore[arg-type]
    assert res.rejected_by_rule == {"int_format": 1}
    assert msg == ["auto_update_time_loyalty is not a whole number of at most 18 digits"]
