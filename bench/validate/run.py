"""Benchmark of `aep-migrate validate` (issue 4), with its references measured side by side.

On a generated Stripe payments export (default 5 million rows, about 1.2 GB; a few defects,
duplicates and ragged rows) it measures, each in its own process so peak RSS is its own:

* bare read: `pl.scan_csv(path, infer_schema=False).collect()`
* read-and-write copy: `pl.scan_csv(path, infer_schema=False).sink_csv(out)`, the floor for
  any tool that must write its valid rows
* the validator (`validate_files`), with its passes timed separately (structure and encoding,
  duplicate identities, rule evaluation and writing)
* the validator on a file of about 0.5 GB, to show peak RSS does not grow with the input

On a 200k-row slice of the same file it compares the validator with pandera (polars backend,
on an eager DataFrame, the only way it checks values) and frictionless, given equivalent checks
(patterns for ids, money and datetimes, enums, currency codes, booleans, unique ids, and three
row checks: decimals per currency, refunded <= amount, refunded after created). Frictionless is
measured twice: with its column checks only (how this bench measured it up to 2026-11-26), and
with the three row checks added as a custom check, which is the equivalent of what the pandera
schema and the validator check.

Run: `.venv/bin/python bench/validate/run.py [--repeat 3]` (needs `pip install -e .[bench]`). Generated data
goes to bench/data/ (gitignored); `--keep` keeps it, otherwise big files are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# Each measurement runs in a child: it prints one JSON line with seconds and its peak RSS.
_CHILD_PRELUDE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
def peak_mb():
    # VmHWM belongs to this address space; ru_maxrss would carry the parent's peak over exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def done(t0, **extra):
    print(json.dumps(dict(seconds=time.perf_counter() - t0, rss_mb=peak_mb(), **extra)))
"""

READ = """
import polars as pl
t0 = time.perf_counter()
df = pl.scan_csv({path!r}, infer_schema=False, truncate_ragged_lines=True).collect()
done(t0, rows=df.height)
"""

COPY = """
import polars as pl
t0 = time.perf_counter()
pl.scan_csv({path!r}, infer_schema=False, truncate_ragged_lines=True).sink_csv({out!r})
done(t0)
"""

VALIDATE = """
from backfill.contracts import load_contracts
from backfill.validate import ValidateOptions, validate_files
contracts = load_contracts()
t0 = time.perf_counter()
run = validate_files([Path({path!r})], contracts, ValidateOptions(out_dir=Path({out!r})))
f = run.files[0]
done(t0, rows=f.rows_read, valid=f.rows_valid, rejected=f.rows_rejected, excluded=f.excluded,
     passes=f.passes, status=f.status)
"""

PANDERA = """
import os
os.environ.setdefault("PANDERA_VALIDATION_DEPTH", "SCHEMA_AND_DATA")
import polars as pl
import pandera.polars as pa
MONEY = r"^-?\\d+(\\.\\d{{1,3}})?$"
DT = r"^\\d{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01]) ([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d)?$"
CUR = {currencies!r}
ZERO = ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
THREE = ["bhd", "jod", "kwd", "omr", "tnd"]
def col(*checks, nullable=False):
    return pa.Column(pl.String, checks=list(checks), nullable=nullable)
def decimals(name):
    # significant decimals of an amount fit its row's currency (the validator's money_scale)
    frac = pl.col(name).str.extract(r"\\.(\\d+)$", 1).fill_null("").str.strip_chars_end("0").str.len_chars()
    cur = pl.col("Currency")
    exp = pl.when(cur.is_in(ZERO)).then(0).when(cur.is_in(THREE)).then(3).otherwise(2)
    return pa.Check(lambda data: data.lazyframe.select(frac <= exp), name=f"{{name}} decimals")
amount = pl.col("Amount").cast(pl.Float64, strict=False)
refunded = pl.col("Amount Refunded").cast(pl.Float64, strict=False)
created = pl.col("Created date (UTC)").str.to_datetime(strict=False)
refunded_at = pl.col("Refunded date (UTC)").str.to_datetime(strict=False)
schema = pa.DataFrameSchema({{
    "id": col(pa.Check.str_matches(r"^(ch|py)_[A-Za-z0-9]+$")),
    "Created date (UTC)": col(pa.Check.str_matches(DT)),
    "Amount": col(pa.Check.str_matches(MONEY)),
    "Amount Refunded": col(pa.Check.str_matches(MONEY)),
    "Currency": col(pa.Check.isin(CUR)),
    "Captured": col(pa.Check.isin(["true", "false"])),
    "Converted Amount": col(pa.Check.str_matches(MONEY), nullable=True),
    "Converted Currency": col(pa.Check.isin(CUR), nullable=True),
    "Fee": col(pa.Check.str_matches(MONEY), nullable=True),
    "Refunded date (UTC)": col(pa.Check.str_matches(DT), nullable=True),
    "Status": col(pa.Check.isin(["Paid", "Refunded", "Failed", "Canceled"])),
    "Customer ID": col(pa.Check.str_matches(r"^cus_[A-Za-z0-9]+$"), nullable=True),
    "Customer Email": col(pa.Check.str_matches(r"^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"), nullable=True),
}}, checks=[
    decimals("Amount"), decimals("Amount Refunded"),
    pa.Check(lambda data: data.lazyframe.select((refunded <= amount).fill_null(True)), name="refunded <= amount"),
    pa.Check(lambda data: data.lazyframe.select((refunded_at >= created).fill_null(True)), name="refunded after created"),
], unique=["id"], drop_invalid_rows=True)
t0 = time.perf_counter()
df = pl.read_csv({path!r}, infer_schema=False, truncate_ragged_lines=True)
valid = schema.validate(df, lazy=True)
valid.write_csv({out!r})
done(t0, rows=df.height, valid=valid.height)
"""

FRICTIONLESS = """
import attrs
from frictionless import Check, Checklist, Resource, Schema, errors, fields
DT_FMT = "%Y-%m-%d %H:%M:%S"
CUR = {currencies!r}
ZERO = {{"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}}
THREE = {{"bhd", "jod", "kwd", "omr", "tnd"}}

@attrs.define(kw_only=True, repr=False)
class CrossField(Check):
    # The three cross-column checks the pandera schema has, as frictionless's documented way
    # to add row rules (a Check with validate_row): column names with spaces rule out
    # row_constraint's formulas.
    type = "cross-field"
    Errors = [errors.RowConstraintError]

    def validate_row(self, row):
        cur = row["Currency"]
        exp = 0 if cur in ZERO else 3 if cur in THREE else 2
        for name in ("Amount", "Amount Refunded"):
            v = row[name]
            if v is not None and max(0, -v.normalize().as_tuple().exponent) > exp:
                yield errors.RowConstraintError.from_row(row, note=name + " decimals")
        amount, refunded = row["Amount"], row["Amount Refunded"]
        if amount is not None and refunded is not None and refunded > amount:
            yield errors.RowConstraintError.from_row(row, note="refunded <= amount")
        created, refunded_at = row["Created date (UTC)"], row["Refunded date (UTC)"]
        if created is not None and refunded_at is not None and refunded_at < created:
            yield errors.RowConstraintError.from_row(row, note="refunded after created")

schema = Schema(fields=[
    fields.StringField(name="id", constraints={{"required": True, "pattern": "(ch|py)_[A-Za-z0-9]+", "unique": True}}),
    fields.DatetimeField(name="Created date (UTC)", format=DT_FMT, constraints={{"required": True}}),
    fields.NumberField(name="Amount", constraints={{"required": True, "minimum": 0}}),
    fields.NumberField(name="Amount Refunded", constraints={{"required": True, "minimum": 0}}),
    fields.StringField(name="Currency", constraints={{"required": True, "enum": CUR}}),
    fields.BooleanField(name="Captured", constraints={{"required": True}}),
    fields.NumberField(name="Converted Amount"),
    fields.NumberField(name="Converted Amount Refunded"),
    fields.StringField(name="Converted Currency", constraints={{"enum": CUR}}),
    fields.StringField(name="Decline Reason"),
    fields.StringField(name="Description"),
    fields.NumberField(name="Fee"),
    fields.DatetimeField(name="Refunded date (UTC)", format=DT_FMT),
    fields.StringField(name="Statement Descriptor"),
    fields.StringField(name="Status", constraints={{"required": True, "enum": ["Paid", "Refunded", "Failed", "Canceled"]}}),
    fields.StringField(name="Seller Message"),
    fields.NumberField(name="Taxes On Fee"),
    fields.StringField(name="Card ID"),
    fields.StringField(name="Customer ID", constraints={{"pattern": "cus_[A-Za-z0-9]+"}}),
    fields.StringField(name="Customer Description"),
    fields.StringField(name="Customer Email", constraints={{"pattern": "[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+"}}),
    fields.StringField(name="Invoice ID"),
    fields.StringField(name="Transfer"),
    fields.StringField(name="order_id (metadata)"),
])
checklist = Checklist(checks=[CrossField()]) if {cross!r} else None
t0 = time.perf_counter()
report = Resource({path!r}, schema=schema).validate(checklist=checklist, limit_errors=10_000_000)
done(t0, rows=report.task.stats.get("rows"), errors=len(report.task.errors), valid=report.valid)
"""


def child(code: str, **fmt: object) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON line."""
    src = _CHILD_PRELUDE.format(root=str(ROOT)) + code.format(**fmt)
    out = subprocess.run([PY, "-c", src], capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure(path: Path, rows: int) -> None:
    """Generate the Stripe payments export unless it is already there."""
    if path.exists():
        return
    sys.path.insert(0, str(ROOT))
    from backfill.samples import generate

    t0 = time.perf_counter()
    g = generate(
        "stripe_payments", path, rows, defect_rate=0.0005, duplicate_rate=0.0002, structural=True
    )
    print(
        f"generated {path} ({path.stat().st_size / 1e9:.2f} GB, {g.rows:,} rows) in {time.perf_counter() - t0:.0f} s"
    )


def head(src: Path, dst: Path, rows: int) -> None:
    """The first `rows` data rows of `src` (a plain line copy: the generated rows are one line each)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        for i, line in enumerate(fin):
            if i > rows:
                break
            fout.write(line)


def line(name: str, r: dict, size: int, rows: int, ref: dict | None = None) -> str:
    s = r["seconds"]
    txt = f"{name:34s} {s:7.2f} s  {rows / s / 1e6:6.2f} M rows/s  {size / 1e6 / s:7.1f} MB/s  peak RSS {r['rss_mb']:7.0f} MB"
    if ref is not None:
        txt += f"  ({s / ref['seconds']:.2f}x time, {r['rss_mb'] / ref['rss_mb']:.2f}x RSS of the copy)"
    return txt


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument(
        "--small-rows",
        type=int,
        default=2_000_000,
        help="second, smaller file for the RSS comparison",
    )
    ap.add_argument("--slice", type=int, default=200_000)
    ap.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--skip-tools", action="store_true", help="skip pandera and frictionless")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every measurement this many times, interleaved; print the median time and the "
        "highest peak RSS (the 2 cores are shared: single runs move by 10-20 %%)",
    )
    ap.add_argument(
        "--slice-only",
        action="store_true",
        help="only the 200k-row comparison with pandera and frictionless",
    )
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    big = args.data / f"stripe_payments_{args.rows}.csv"
    small = args.data / f"stripe_payments_{args.small_rows}.csv"
    sl = args.data / f"stripe_payments_slice_{args.slice}.csv"
    out = args.data / "validate-out"
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {os.cpu_count()} cores (shared with other work while measuring); polars {_polars_version()}"
    )
    if args.slice_only:
        ensure(sl, args.slice)
        _tools(args, sl, out)
        _cleanup(args, [sl], out)
        return
    ensure(big, args.rows)
    ensure(small, args.small_rows)
    head(big, sl, args.slice)
    size = big.stat().st_size
    print(f"\n== {big.name}: {size / 1e9:.2f} GB, {args.rows:,} rows ==")
    read, copy, val = interleaved(
        args.repeat,
        lambda: child(READ, path=str(big)),
        lambda: child(COPY, path=str(big), out=str(args.data / "copy.csv")),
        lambda: child(VALIDATE, path=str(big), out=str(out)),
    )
    print(line("bare scan_csv().collect()", read, size, args.rows))
    print(line("scan_csv().sink_csv() copy", copy, size, args.rows))
    print(line("validate", val, size, args.rows, copy))
    print(
        f"{'':34s} {val['seconds'] / read['seconds']:.2f}x the bare read; passes: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in val["passes"].items())
    )
    print(
        f"{'':34s} rows read {val['rows']:,} = valid {val['valid']:,} + rejected {val['rejected']:,} + excluded {val['excluded']}"
    )
    ssize = small.stat().st_size
    (sval,) = interleaved(args.repeat, lambda: child(VALIDATE, path=str(small), out=str(out)))
    print("\n== peak RSS vs input size ==")
    print(
        line(
            f"validate {ssize / 1e9:.2f} GB ({args.small_rows:,} rows)",
            sval,
            ssize,
            args.small_rows,
        )
    )
    print(line(f"validate {size / 1e9:.2f} GB ({args.rows:,} rows)", val, size, args.rows))
    if not args.skip_tools:
        _tools(args, sl, out)
    _cleanup(args, [big, small, sl, args.data / "copy.csv"], out)


def interleaved(n: int, *measure: Callable[[], dict]) -> list[dict]:
    """Run each measurement `n` times, one after the other in turn; per measurement the run
    with the median time, with the highest peak RSS of all its runs."""
    runs: list[list[dict]] = [[] for _ in measure]
    for _ in range(max(n, 1)):
        for got, m in zip(runs, measure, strict=True):
            got.append(m())
    out = []
    for got in runs:
        med = dict(sorted(got, key=lambda r: r["seconds"])[len(got) // 2])
        med["rss_mb"] = max(r["rss_mb"] for r in got)
        out.append(med)
    return out


def _tools(args: argparse.Namespace, sl: Path, out: Path) -> None:
    """The validator, pandera and frictionless on the same slice."""
    from backfill.contracts.currencies import KNOWN_CURRENCIES

    cur = sorted(KNOWN_CURRENCIES)
    slsize = sl.stat().st_size
    print(f"\n== {sl.name}: {slsize / 1e6:.0f} MB, {args.slice:,} rows ==")
    # frictionless refuses absolute paths ("unsafe") unless trusted: give it one relative to ROOT.
    rel = str(sl.resolve().relative_to(ROOT))
    v, pa, fr, frx = interleaved(
        args.repeat,
        lambda: child(VALIDATE, path=str(sl), out=str(out)),
        lambda: child(PANDERA, path=str(sl), currencies=cur, out=str(out / "pandera.valid.csv")),
        lambda: child(FRICTIONLESS, path=rel, currencies=cur, cross=False),
        lambda: child(FRICTIONLESS, path=rel, currencies=cur, cross=True),
    )
    print(line("validate (checks + writes outputs)", v, slsize, args.slice))
    print(
        line("pandera (polars, drop+write valid)", pa, slsize, args.slice)
        + f"  -> validate is {pa['seconds'] / v['seconds']:.2f}x as fast, {v['rss_mb'] / pa['rss_mb']:.2f}x its RSS"
    )
    for got in (fr, frx):
        if not got.get("rows"):
            raise RuntimeError(f"frictionless did not read the file: {got}")
    print(
        line("frictionless, column checks only", fr, slsize, args.slice)
        + f"  -> validate is {fr['seconds'] / v['seconds']:.1f}x faster"
    )
    print(
        line("frictionless, + pandera's row checks", frx, slsize, args.slice)
        + f"  -> validate is {frx['seconds'] / v['seconds']:.1f}x faster (the equivalent checks)"
    )
    print(
        f"{'':34s} frictionless errors: {fr['errors']:,} column-checks-only, {frx['errors']:,} with the row checks"
    )


def _cleanup(args: argparse.Namespace, files: list[Path], out: Path) -> None:
    if args.keep:
        return
    for p in files:
        p.unlink(missing_ok=True)
    for p in out.glob("*"):
        p.unlink()


def _polars_version() -> str:
    import polars as pl

    return pl.__version__


if __name__ == "__main__":
    main()
