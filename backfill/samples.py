"""Synthetic Stripe and Capillary exports: clean, or with defects at known rates.

Serves the benchmarks (millions of rows, written by a streaming polars query) and the bundled
sample exports of the embedded default (config/samples/). Every column is a function of a row's
*source index*, so an exact duplicate row is simply a row whose source index repeats. Defects
are injected on chosen rows, one per row, each breaking exactly one error rule; the returned
`GeneratedExport` says how many of each were written, so a test can check the validator finds
exactly those. Headers are the verbatim export headers of the reference (csv-exports.md).

Nothing here reads the contracts: the generator is an independent description of the exports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

__all__ = ["GENERATORS", "GeneratedExport", "generate", "write_bundled_samples"]

_BASE_EPOCH = 1_735_689_600  # 2025-01-01 00:00:00 UTC
_SPAN = 600 * 86_400


@dataclass
class GeneratedExport:
    """What was written: rows, and how many rows carry each kind of defect."""

    path: Path
    kind: str
    rows: int
    value_defects: dict[str, int] = field(default_factory=dict)
    """Header -> rows whose value in that column was made invalid (each rejected once)."""
    exact_duplicates: int = 0
    """Rows that repeat an earlier row byte for byte (excluded, not rejected)."""
    structural: int = 0
    """Appended rows with a wrong field count / a cut-off last line (rejected)."""

    @property
    def expected_rejects(self) -> int:
        """Rows the validator must reject."""
        return sum(self.value_defects.values()) + self.structural


# --- small column builders (all vectorised on the source index `s`) ---------------------------


def _h(s: pl.Expr, salt: int, mod: int) -> pl.Expr:
    """Deterministic pseudo-random integer in [0, mod) from the source index."""
    return ((s * 2_654_435_761 + salt * 40_503) % 4_294_967_291 % mod).cast(pl.Int64)


def _pick(s: pl.Expr, salt: int, values: list[str]) -> pl.Expr:
    # when/then, not replace_strict: the latter would stop the generator's query streaming.
    h = _h(s, salt, len(values))
    out: pl.Expr = pl.lit(values[-1])
    for i, v in reversed(list(enumerate(values[:-1]))):
        out = pl.when(h == i).then(pl.lit(v)).otherwise(out)
    return out


def _ts(s: pl.Expr, step: int, fmt: str = "%Y-%m-%d %H:%M:%S", offset: int = 0) -> pl.Expr:
    # Wrap within ~600 days from 2025-01-01 so big files never reach the future.
    return pl.from_epoch((s * step) % _SPAN + _BASE_EPOCH + offset, time_unit="s").dt.strftime(fmt)


def _major(minor: pl.Expr, exp: pl.Expr) -> pl.Expr:
    """Integer minor units -> major-unit text with `exp` decimals (0, 2 or 3)."""
    units = (
        minor.abs() // pl.when(exp == 0).then(1).when(exp == 3).then(1000).otherwise(100)
    ).cast(pl.String)
    frac = (minor.abs() % pl.when(exp == 3).then(1000).otherwise(100)).cast(pl.String)
    frac = pl.when(exp == 3).then(frac.str.pad_start(3, "0")).otherwise(frac.str.pad_start(2, "0"))
    sign = pl.when(minor < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return (
        pl.when(exp == 0)
        .then(pl.concat_str([sign, units]))
        .otherwise(pl.concat_str([sign, units, pl.lit("."), frac]))
    )


def _money2(minor: pl.Expr) -> pl.Expr:
    return _major(minor, pl.lit(2))


def _exp_of(cur: pl.Expr) -> pl.Expr:
    return (
        pl.when(cur.is_in(["jpy", "krw"]))
        .then(0)
        .when(cur.is_in(["kwd", "bhd"]))
        .then(3)
        .otherwise(2)
    )


def _code(prefix: str, s: pl.Expr, width: int = 10) -> pl.Expr:
    return pl.concat_str([pl.lit(prefix), s.cast(pl.String).str.pad_start(width, "0")])


def _email(s: pl.Expr, who: str) -> pl.Expr:
    return pl.concat_str([pl.lit(who), s.cast(pl.String), pl.lit("@example.com")])


Builder = Callable[[pl.Expr], list[pl.Expr]]
"""Source index -> the export's columns in header order (named by their headers)."""


def _charge_amount(s: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Currency, its exponent and the amount in minor units of payment `s`."""
    cur = _pick(s, 1, ["usd", "usd", "usd", "eur", "gbp", "aud", "jpy", "kwd"])
    exp = _exp_of(cur)
    unit = pl.when(exp == 0).then(1).when(exp == 3).then(10).otherwise(1)
    return cur, exp, (_h(s, 2, 20_000) * 5 + 100) * unit


def _stripe_payments(s: pl.Expr) -> list[pl.Expr]:
    cur, exp, minor = _charge_amount(s)
    # Payment 17 k is refunded in full by refund k of the refunds file.
    status = (
        pl.when(s % 17 == 0)
        .then(pl.lit("Refunded"))
        .otherwise(_pick(s, 3, ["Paid"] * 17 + ["Refunded", "Failed"]))
    )
    refunded = pl.when(status == "Refunded").then(minor).otherwise(0)
    fee = (
        pl.when(status == "Failed")
        .then(0)
        .otherwise(((_h(s, 2, 20_000) * 5 + 100) * 29) // 1000 + 30)
    )
    conv = _h(s, 2, 20_000) * 5 + 100
    return [
        _code("ch_3Pq", s).alias("id"),
        _ts(s, 37).alias("Created date (UTC)"),
        _major(minor, exp).alias("Amount"),
        _major(refunded, exp).alias("Amount Refunded"),
        cur.alias("Currency"),
        pl.when(status == "Failed")
        .then(pl.lit("false"))
        .otherwise(pl.lit("true"))
        .alias("Captured"),
        _money2(conv).alias("Converted Amount"),
        _money2(pl.when(status == "Refunded").then(conv).otherwise(0)).alias(
            "Converted Amount Refunded"
        ),
        pl.lit("usd").alias("Converted Currency"),
        pl.when(status == "Failed")
        .then(pl.lit("card_declined"))
        .otherwise(pl.lit(""))
        .alias("Decline Reason"),
        pl.when(_h(s, 4, 20) == 0)
        .then(pl.format("Order {}, {} items", s, _h(s, 5, 5) + 2))
        .otherwise(pl.format("Order {}", s))
        .alias("Description"),
        _money2(fee).alias("Fee"),
        pl.when(status == "Refunded")
        .then(_ts(s, 37, offset=86_400))
        .otherwise(pl.lit(""))
        .alias("Refunded date (UTC)"),
        pl.lit("ACME SHOP").alias("Statement Descriptor"),
        status.alias("Status"),
        pl.when(status == "Failed")
        .then(pl.lit("The bank declined the payment."))
        .otherwise(pl.lit("Payment complete."))
        .alias("Seller Message"),
        pl.lit("0.00").alias("Taxes On Fee"),
        _code("card_1Pq", s).alias("Card ID"),
        _code("cus_Q", s % 5000, 6).alias("Customer ID"),
        pl.lit("").alias("Customer Description"),
        _email(s % 5000, "buyer").alias("Customer Email"),
        pl.when(_h(s, 6, 4) == 0)
        .then(_code("in_1Pq", s))
        .otherwise(pl.lit(""))
        .alias("Invoice ID"),
        pl.lit("").alias("Transfer"),
        pl.format("A-{}", s).alias("order_id (metadata)"),
    ]


def _stripe_customers(s: pl.Expr) -> list[pl.Expr]:
    spend = _h(s, 2, 200_000)
    return [
        _code("cus_Q", s, 6).alias("id"),
        pl.lit("").alias("Description"),
        _email(s, "buyer").alias("Email"),
        pl.format("Buyer {}", s).alias("Name"),
        _ts(s, 3_600, "%Y-%m-%d %H:%M").alias("Created (UTC)"),
        pl.lit("false").alias("Delinquent"),
        pl.when(_h(s, 3, 3) == 0).then(pl.lit("price_1Pro")).otherwise(pl.lit("")).alias("Plan"),
        pl.when(_h(s, 3, 3) == 0).then(pl.lit("active")).otherwise(pl.lit("")).alias("Status"),
        _money2(spend).alias("Total Spend"),
        (spend // 2990).cast(pl.String).alias("Payment Count"),
        pl.lit("0.00").alias("Refunded Volume"),
        pl.lit("0.00").alias("Dispute Losses"),
        _pick(s, 4, ["web", "shop", ""]).alias("channel (metadata)"),
    ]


def _stripe_subscriptions(s: pl.Expr) -> list[pl.Expr]:
    status = _pick(s, 1, ["active"] * 6 + ["trialing", "past_due", "canceled"])
    created = _ts(s, 7_200, "%Y-%m-%d %H:%M")
    return [
        _code("sub_1Pq", s).alias("id"),
        _code("cus_Q", s, 6).alias("Customer ID"),
        pl.format("Buyer {}", s).alias("Customer Name"),
        _email(s, "buyer").alias("Customer Email"),
        _code("price_1Pq", _h(s, 2, 50)).alias("Plan"),  # one of the first 50 prices
        pl.lit("month").alias("Interval"),
        pl.lit("29.90").alias("Amount"),
        status.alias("Status"),
        created.alias("Created (UTC)"),
        created.alias("Start Date (UTC)"),
        _ts(s, 7_200, "%Y-%m-%d %H:%M", offset=20 * 86_400).alias("Current Period Start (UTC)"),
        _ts(s, 7_200, "%Y-%m-%d %H:%M", offset=50 * 86_400).alias("Current Period End (UTC)"),
        pl.when(status == "trialing")
        .then(created)
        .otherwise(pl.lit(""))
        .alias("Trial Start (UTC)"),
        pl.when(status == "trialing")
        .then(_ts(s, 7_200, "%Y-%m-%d %H:%M", offset=14 * 86_400))
        .otherwise(pl.lit(""))
        .alias("Trial End (UTC)"),
        pl.when(status == "canceled")
        .then(_ts(s, 7_200, "%Y-%m-%d %H:%M", offset=40 * 86_400))
        .otherwise(pl.lit(""))
        .alias("Canceled At (UTC)"),
        pl.when(status == "canceled")
        .then(_ts(s, 7_200, "%Y-%m-%d %H:%M", offset=50 * 86_400))
        .otherwise(pl.lit(""))
        .alias("Ended At (UTC)"),
        pl.when(status == "canceled")
        .then(pl.lit("cancellation_requested"))
        .otherwise(pl.lit(""))
        .alias("Cancellation Reason"),
        pl.lit("").alias("Coupon"),
    ]


def _stripe_refunds(s: pl.Expr) -> list[pl.Expr]:
    # Refund s refunds payment 17 s in full, in its currency (consistent with the payments file
    # across files: never more than the charge, never before it).
    cur, exp, minor = _charge_amount(s * 17)
    return [
        _code("re_3Pq", s).alias("id"),
        _major(minor, exp).alias("Amount"),
        cur.alias("Currency"),
        _ts(s, 5_000, "%Y-%m-%d %H:%M").alias("Created (UTC)"),
        _code("ch_3Pq", s * 17).alias("Charge ID"),
        _code("pi_3Pq", s * 17).alias("PaymentIntent ID"),
        _pick(s, 2, ["requested_by_customer", "duplicate", "", "fraudulent"]).alias("Reason"),
        _pick(s, 3, ["succeeded"] * 8 + ["pending", "failed"]).alias("Status"),
        _code("txn_3Pq", s).alias("Balance Transaction"),
        pl.lit("").alias("Description"),
    ]


def _stripe_balance_history(s: pl.Expr) -> list[pl.Expr]:
    typ = _pick(s, 1, ["charge"] * 6 + ["refund", "payout", "stripe_fee"])
    gross = _h(s, 2, 50_000) + 500
    amount = pl.when(typ == "charge").then(gross).otherwise(-gross)
    fee = pl.when(typ == "charge").then(gross * 29 // 1000 + 30).otherwise(0)
    src = (
        pl.when(typ == "charge")
        .then(_code("ch_3Pq", s))
        .when(typ == "refund")
        .then(_code("re_3Pq", s))
        .when(typ == "payout")
        .then(_code("po_1Pq", s))
        .otherwise(pl.lit(""))
    )
    return [
        _code("txn_3Pq", s).alias("id"),
        typ.alias("Type"),
        src.alias("Source"),
        _money2(amount).alias("Amount"),
        _money2(fee).alias("Fee"),
        _money2(amount - fee).alias("Net"),
        pl.lit("usd").alias("Currency"),
        _ts(s, 3_000, "%Y-%m-%d %H:%M").alias("Created (UTC)"),
        _ts(s, 3_000, "%Y-%m-%d 00:00", offset=2 * 86_400).alias("Available On (UTC)"),
        pl.when(typ == "payout")
        .then(pl.lit("STRIPE PAYOUT"))
        .otherwise(pl.lit(""))
        .alias("Description"),
        pl.lit("").alias("Customer Facing Amount"),
        pl.lit("").alias("Customer Facing Currency"),
        pl.lit("").alias("Transfer"),
        pl.lit("").alias("Transfer Date (UTC)"),
        pl.lit("").alias("Transfer Group"),
    ]


def _stripe_balance_report(s: pl.Expr) -> list[pl.Expr]:
    cat = _pick(s, 1, ["charge"] * 6 + ["refund", "payout", "fee"])
    gross = _h(s, 2, 50_000) + 500
    amount = pl.when(cat == "charge").then(gross).otherwise(-gross)
    fee = pl.when(cat == "charge").then(gross * 29 // 1000 + 30).otherwise(0)
    return [
        _code("txn_3Pr", s).alias("balance_transaction_id"),
        _ts(s, 3_000).alias("created_utc"),
        _ts(s, 3_000, "%Y-%m-%d 00:00:00", offset=2 * 86_400).alias("available_on_utc"),
        pl.lit("usd").alias("currency"),
        _money2(amount).alias("gross"),
        _money2(fee).alias("fee"),
        _money2(amount - fee).alias("net"),
        cat.alias("reporting_category"),
        pl.lit("").alias("description"),
    ]


def _stripe_prices(s: pl.Expr) -> list[pl.Expr]:
    interval = _pick(s, 1, ["month", "month", "year", ""])
    return [
        _code("price_1Pq", s).alias("Price ID"),
        _code("prod_Pq", s // 2, 6).alias("Product ID"),
        pl.format("Product {}", s // 2).alias("Product Name"),
        pl.lit("").alias("Product Statement Descriptor"),
        pl.lit("").alias("Product Tax Code"),
        pl.lit("").alias("Description"),
        _ts(s, 86_400, "%Y-%m-%d %H:%M").alias("Created (UTC)"),
        _money2((_h(s, 2, 100) + 1) * 100 - 10).alias("Amount"),
        pl.lit("usd").alias("Currency"),
        interval.alias("Interval"),
        pl.when(interval == "").then(pl.lit("")).otherwise(pl.lit("1")).alias("Interval Count"),
        pl.when(interval == "").then(pl.lit("")).otherwise(pl.lit("licensed")).alias("Usage Type"),
        pl.lit("").alias("Aggregate Usage"),
        pl.lit("per_unit").alias("Billing Scheme"),
        pl.lit("").alias("Trial Period Days"),
        pl.lit("unspecified").alias("Tax Behavior"),
    ]


def _loyalty_points(c: pl.Expr) -> pl.Expr:
    """Current points of Capillary customer `c` (user_id 40000 + c)."""
    return _h(c, 1, 5_000) + 1


def _capillary_customers(s: pl.Expr) -> list[pl.Expr]:
    pts = _loyalty_points(s)
    return [
        (s + 40_000).cast(pl.String).alias("user_id"),
        _pick(s, 2, ["Asha", "Ravi", "Meera", "Arjun", "Sara", "Tomás"]).alias("first_name"),
        _pick(s, 3, ["Rao", "Shah", "Iyer", "Nair", "Ortega"]).alias("last_name"),
        _email(s, "member").alias("email"),
        (s + 919_845_000_000).cast(pl.String).alias("mobile"),
        (s + 1).cast(pl.String).str.pad_start(6, "0").alias("customer_external_id"),
        pl.concat_str([_ts(s, 3_600), pl.lit(".0")]).alias("registered_on"),
        _pick(s, 4, ["till_hsr", "till_mg", "till_web"]).alias("registered_till_id"),
        pl.lit("loyalty").alias("loyalty_type"),
        _pick(s, 5, ["BRONZE", "SILVER", "GOLD"]).alias("slab_name"),
        (_h(s, 5, 3) + 1).cast(pl.String).alias("slab_number"),
        pl.lit("2027-12-31 00:00:00").alias("slab_expiry_date"),
        pts.cast(pl.String).alias("loyalty_points"),
        (pts + _h(s, 6, 3_000)).cast(pl.String).alias("lifetime_points"),
        _h(s, 6, 3_000).cast(pl.String).alias("redeemed_points"),
        pl.lit("0").alias("expired_points"),
        pl.lit("NONE").alias("fraud_status"),
        pl.lit("false").alias("is_merged_customer"),
    ]


def _line_item(s: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Quantity, rate, value and discount (minor units) of line item `s` (of bill s // 3)."""
    qty = _h(s, 1, 4) + 1
    rate = _h(s, 2, 5_000) + 100
    value = qty * rate
    return qty, rate, value, pl.when(_h(s, 3, 4) == 0).then(value // 10).otherwise(0)


def _capillary_transactions(s: pl.Expr) -> list[pl.Expr]:
    # Bill s holds line items 3 s .. 3 s + 2: its gross and discount are theirs.
    items = [_line_item(s * 3 + j) for j in range(3)]
    gross = pl.sum_horizontal([v for _, _, v, _ in items])
    disc = pl.sum_horizontal([d for _, _, _, d in items])
    return [
        (s + 900_000).cast(pl.String).alias("bill_id"),
        pl.format("HSR-{}", s).alias("bill_number"),
        _ts(s, 1_800).alias("bill_date"),
        _pick(s, 2, ["HSR", "MG", "WEB"]).alias("bill_store"),
        (s % 300 + 40_000).cast(pl.String).alias("user_id"),
        pl.lit("").alias("email"),
        pl.lit("").alias("mobile"),
        pl.lit("").alias("customer_external_id"),
        _money2(gross - disc).alias("bill_amount"),
        _money2(gross).alias("initial_bill_value"),
        _money2(disc).alias("bill_discount"),
        pl.lit("0").alias("tax_amount"),
        pl.lit("REGULAR").alias("bill_type"),
        pl.lit("NORMAL").alias("outlier_status"),
        pl.lit("INR").alias("currency_code"),
        (s * 1_800 + _BASE_EPOCH + 60).cast(pl.String).alias("auto_update_time_bill"),
    ]


def _capillary_line_items(s: pl.Expr) -> list[pl.Expr]:
    qty, rate, value, disc = _line_item(s)
    return [
        (s + 70_000).cast(pl.String).alias("line_item_id"),
        (s // 3 + 900_000).cast(pl.String).alias("bill_id"),
        pl.format("HSR-{}", s // 3).alias("bill_number"),
        pl.concat_str([pl.lit("SKU-"), (_h(s, 4, 900) + 100).cast(pl.String)]).alias("item_code"),
        _pick(s, 5, ["Tee", "Mug", "Cap", "Socks", "Bag"]).alias("description"),
        qty.cast(pl.String).alias("quantity"),
        _money2(rate).alias("rate"),
        _money2(value).alias("initial_line_item_value"),
        _money2(disc).alias("line_item_discount"),
        _money2(value - disc).alias("line_item_amount"),
        pl.lit("").alias("parent_line_item_id"),
    ]


def _capillary_points(s: pl.Expr) -> list[pl.Expr]:
    # Three entries per customer: a credit of its current points, then a credit and a debit of
    # the same amount, so the ledger adds up to the profile's loyalty_points.
    step = s % 3
    c = (s // 3) % 300
    credit = step != 2
    points = pl.when(step == 0).then(_loyalty_points(c)).otherwise(_h(s // 3, 2, 500) + 1)
    return [
        pl.format("EV{}", s).alias("eventLogId"),
        (c + 40_000).cast(pl.String).alias("user_id"),
        pl.when(credit)
        .then(pl.lit("TransactionAdd"))
        .otherwise(pl.lit("PointsRedemption"))
        .alias("eventName"),
        pl.when(credit).then(pl.lit("CREDIT")).otherwise(pl.lit("DEBIT")).alias("ledgerEntryType"),
        points.cast(pl.String).alias("points"),
        pl.lit("Main").alias("pointsCategory"),
        pl.lit("7").alias("programId"),
        pl.concat_str([_ts(s, 2_400), pl.lit(".0")]).alias("ledgerCreatedDate"),
        pl.when(credit)
        .then(pl.format("HSR-{}", s))
        .otherwise(pl.lit(""))
        .alias("transactionNumber"),
        pl.lit("HSR").alias("storeCode"),
        pl.lit("HSR01").alias("tillCode"),
    ]


GENERATORS: dict[str, tuple[Builder, list[tuple[str, str]]]] = {
    # kind: (builder, value defects [(header, bad value)], each breaking exactly one error rule)
    "stripe_payments": (
        _stripe_payments,
        [
            ("Amount", "29.9051"),
            ("Created date (UTC)", "2026-1-5 1:2:3"),
            ("id", "1.23457E+11"),
            ("Currency", "xyz"),
            ("Captured", "yes"),
            ("Amount", "1,000.00"),
        ],
    ),
    "stripe_customers": (
        _stripe_customers,
        [("id", "cust_1"), ("Created (UTC)", "8/6/2025 12:00"), ("Delinquent", "maybe")],
    ),
    "stripe_subscriptions": (
        _stripe_subscriptions,
        [("Status", "expired"), ("Customer ID", "9.1E+11"), ("Created (UTC)", "2025-02-30 10:00")],
    ),
    "stripe_refunds": (
        _stripe_refunds,
        [("Amount", "0.00"), ("Reason", "because"), ("Currency", "usdollar")],
    ),
    "stripe_balance_history": (
        _stripe_balance_history,
        [("Net", "1.01"), ("id", "tx_1"), ("Created (UTC)", "2025-13-01 10:00")],
    ),
    "stripe_balance_report": (
        _stripe_balance_report,
        [("net", "1.01"), ("created_utc", "2025-01-01 23:59:60"), ("reporting_category", "")],
    ),
    "stripe_prices": (
        _stripe_prices,
        [("Amount", "12.345"), ("Currency", "xx"), ("Tax Behavior", "none")],
    ),
    "capillary_customers": (
        _capillary_customers,
        [
            ("mobile", "9.16722E+11"),
            ("email", "no-at-sign.example.com"),
            ("registered_on", "2031-01-01 00:00:00"),
        ],
    ),
    "capillary_transactions": (
        _capillary_transactions,
        [
            ("bill_number", "2.20E+02"),
            ("bill_discount", "99999999.00"),
            ("bill_date", "14/07/2025 12:00"),
        ],
    ),
    "capillary_line_items": (
        _capillary_line_items,
        [("item_code", "8.90103E+12"), ("quantity", "0"), ("line_item_discount", "99999999.00")],
    ),
    "capillary_points": (
        _capillary_points,
        [
            ("ledgerEntryType", "EXPIRE"),
            ("points", "-5"),
            ("ledgerCreatedDate", "2031-01-01 00:00:00"),
        ],
    ),
}


def _frame(
    kind: str, rows: int, *, defect_rate: float, duplicate_rate: float
) -> tuple[pl.LazyFrame, list[str]]:
    builder, defects = GENERATORS[kind]
    i = pl.col("__i")
    dup_every = round(1 / duplicate_rate) if duplicate_rate > 0 else 0
    is_dup = (i % dup_every == 1) if dup_every else pl.lit(False)
    src = pl.when(is_dup).then(i - 1).otherwise(i)
    lf = pl.LazyFrame().select(pl.int_range(rows, dtype=pl.Int64).alias("__i"))
    cols = builder(src)
    names = [c.meta.output_name() for c in cols]
    lf = lf.with_columns(cols).with_columns(__dup=is_dup)
    if defect_rate > 0:
        every = max(round(1 / defect_rate), 3)
        # Defect rows never touch a duplicated pair (rows i-1, i of a duplicate).
        hit = (i % every == every // 2) & ~(
            (i % dup_every).is_in([0, 1]) if dup_every else pl.lit(False)
        )
        typ = (i // every) % len(defects)
        lf = lf.with_columns(__def=pl.when(hit).then(typ).otherwise(None))
        for j, (col, bad) in enumerate(defects):
            lf = lf.with_columns(
                pl.when(pl.col("__def") == j).then(pl.lit(bad)).otherwise(pl.col(col)).alias(col)
            )
    else:
        lf = lf.with_columns(__def=pl.lit(None, pl.Int64))
    return lf, names


def generate(
    kind: str,
    path: Path,
    rows: int,
    *,
    defect_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    structural: bool = False,
) -> GeneratedExport:
    """Write a synthetic export of `kind` with `rows` data rows (+2 structural ones if asked).

    Args:
        kind: one of GENERATORS.
        path: CSV file to write (UTF-8, LF, header first).
        rows: data rows from the builder.
        defect_rate: share of rows given one invalid value (cycling through the kind's defects).
        duplicate_rate: share of rows that repeat the previous row exactly.
        structural: append one row with an extra field and a last line cut short (no line end).
    """
    lf, names = _frame(kind, rows, defect_rate=defect_rate, duplicate_rate=duplicate_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Empty cells are written empty (polars would quote an empty string as ""), as Stripe does.
    lf.select(
        [pl.when(pl.col(n) == "").then(None).otherwise(pl.col(n)).alias(n) for n in names]
    ).sink_csv(path)
    stats = (
        lf.select(pl.col("__dup").cast(pl.Int64).alias("dups"), pl.col("__def").alias("d"))
        .group_by("d")
        .agg(pl.col("dups").sum(), pl.len())
        .collect()
    )
    defects = GENERATORS[kind][1]
    out = GeneratedExport(path=path, kind=kind, rows=rows)
    for d, dups, n in stats.iter_rows():
        out.exact_duplicates += int(dups)
        if d is not None:
            col = defects[int(d)][0]
            out.value_defects[col] = out.value_defects.get(col, 0) + int(n)
    if structural:
        n = len(names)
        with path.open("a", encoding="utf-8", newline="") as fh:
            fh.write(",".join(["x"] * (n + 1)) + "\n")
            fh.write(",".join(["y"] * max(n // 2, 1)))
        out.structural = 2
        out.rows += 2
    return out


def write_bundled_samples(directory: Path, rows: int = 300) -> list[GeneratedExport]:
    """Write the sample exports shipped in config/samples/: `rows` rows per kind, a few defects
    (about 1.5 % bad values, 1 % exact duplicates, and in the payments file a ragged row and a
    cut-off last line), so every file validates under the default 5 % reject rate."""
    out = []
    for kind in GENERATORS:
        out.append(
            generate(
                kind,
                directory / f"{kind}.csv",
                rows,
                defect_rate=0.015,
                duplicate_rate=0.01,
                structural=kind == "stripe_payments",
            )
        )
    return out
