"""Generate the jaffle shop seed CSVs (raw_customers, raw_orders, raw_payments).

Deterministic: a given (scale, seed) always produces byte-identical files, so the output can be
compared, cached and checked for freshness. Scale 1 is the small default dataset (100 customers,
99 orders, 110 payments); scale N multiplies every table linearly.

Files are written atomically and only when their content changes, so a rerun with the same
parameters leaves the files (and their mtimes) untouched.

    python -m tools.generate_data --scale 1 --out dbt/jaffle_shop/seeds

Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import os
import random
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
JAFFLE_SHOP_DIR = REPO_ROOT / "dbt" / "jaffle_shop"
DEFAULT_OUT = JAFFLE_SHOP_DIR / "seeds"

CUSTOMERS_PER_SCALE = 100
ORDERS_PER_SCALE = 99
EXTRA_PAYMENTS_PER_SCALE = 11  # orders paid in two parts: 99 + 11 = 110 payments per scale
START_DATE = dt.date(2024, 1, 1)
ORDER_DAYS = 365  # orders are spread over the year starting at START_DATE

STATUSES = ("placed", "shipped", "completed", "return_pending", "returned")
STATUS_WEIGHTS = (10, 10, 68, 4, 8)
PAYMENT_METHODS = ("credit_card", "coupon", "bank_transfer", "gift_card")
PAYMENT_WEIGHTS = (50, 15, 20, 15)
MIN_AMOUNT_CENTS = 100
MAX_AMOUNT_CENTS = 3_000

FIRST_NAMES = (
    "Aaron", "Adam", "Alan", "Albert", "Amanda", "Amy", "Andrea", "Andrew", "Ann", "Anna",
    "Anthony", "Arthur", "Benjamin", "Betty", "Bonnie", "Brandon", "Brenda", "Carl", "Carol",
    "Catherine", "Charles", "Christina", "Christopher", "Cynthia", "Daniel", "David", "Debra",
    "Dennis", "Diana", "Donald", "Doris", "Dorothy", "Edward", "Elizabeth", "Emily", "Eric",
    "Frances", "Frank", "Gary", "George", "Gloria", "Harold", "Harry", "Heather", "Helen",
    "Henry", "Jack", "Jacqueline", "James", "Jane", "Janet", "Jason", "Jennifer", "Jeremy",
    "Jessica", "Jimmy", "Joan", "John", "Johnny", "Jose", "Joseph", "Joshua", "Judith", "Julia",
    "Julie", "Justin", "Karen", "Kathleen", "Kathryn", "Katherine", "Keith", "Kelly", "Kenneth",
    "Kevin", "Lillian", "Linda", "Lisa", "Lori", "Louis", "Margaret", "Maria", "Marie", "Mark",
    "Martha", "Martin", "Mary", "Matthew", "Michael", "Michelle", "Mildred", "Nancy", "Nicole",
    "Norma", "Patrick", "Paul", "Paula", "Peter", "Phillip", "Rachel", "Raymond", "Rebecca",
    "Richard", "Robert", "Robin", "Ronald", "Rose", "Russell", "Ruth", "Samuel", "Sandra",
    "Sara", "Scott", "Shirley", "Stephen", "Steve", "Susan", "Teresa", "Thomas", "Timothy",
    "Victor", "Walter", "Wanda", "Wayne", "William",
)  # fmt: skip
LAST_INITIALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

CUSTOMERS_HEADER = ("id", "first_name", "last_name")
ORDERS_HEADER = ("id", "user_id", "order_date", "status")
PAYMENTS_HEADER = ("id", "order_id", "payment_method", "amount")


@dataclass(frozen=True)
class Dataset:
    customers: list[tuple[int, str, str]]
    orders: list[tuple[int, int, dt.date, str]]
    payments: list[tuple[int, int, str, int]]


def _check_args(scale: int, seed: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def build_dataset(scale: int = 1, seed: int = 42) -> Dataset:
    """Build the three tables in memory. Pure: no I/O, no wall clock."""
    _check_args(scale, seed)
    rng = random.Random(seed)
    n_customers = CUSTOMERS_PER_SCALE * scale
    n_orders = ORDERS_PER_SCALE * scale

    customers = [
        (customer_id, rng.choice(FIRST_NAMES), rng.choice(LAST_INITIALS) + ".")
        for customer_id in range(1, n_customers + 1)
    ]

    # Order ids increase with order_date, as in the classic jaffle shop. Some customers get no
    # order at all, some several.
    day_offsets = sorted(rng.randrange(ORDER_DAYS) for _ in range(n_orders))
    statuses = rng.choices(STATUSES, weights=STATUS_WEIGHTS, k=n_orders)
    orders = [
        (
            order_id,
            rng.randint(1, n_customers),
            START_DATE + dt.timedelta(days=day_offset),
            status,
        )
        for order_id, (day_offset, status) in enumerate(zip(day_offsets, statuses, strict=True), start=1)
    ]

    # One payment per order, plus a second one for a fixed number of orders.
    split_orders = set(rng.sample(range(1, n_orders + 1), EXTRA_PAYMENTS_PER_SCALE * scale))
    payments: list[tuple[int, int, str, int]] = []
    for order_id, *_ in orders:
        for _part in range(2 if order_id in split_orders else 1):
            method = rng.choices(PAYMENT_METHODS, weights=PAYMENT_WEIGHTS)[0]
            amount = rng.randint(MIN_AMOUNT_CENTS, MAX_AMOUNT_CENTS)
            payments.append((len(payments) + 1, order_id, method, amount))

    return Dataset(customers=customers, orders=orders, payments=payments)


def _to_csv(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(value.isoformat() if isinstance(value, dt.date) else value for value in row)
    return buffer.getvalue().encode("utf-8")


def write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically replace `path` with `content` unless it already holds exactly that.

    Returns True if the file was (re)written, False if it was left untouched.
    """
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; seeds are ordinary readable files
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return True


def generate(out_dir: Path, scale: int = 1, seed: int = 42) -> dict[str, int]:
    """Write raw_customers.csv, raw_orders.csv and raw_payments.csv into `out_dir`.

    Returns the number of data rows (header excluded) per table, keyed by seed name.
    """
    data = build_dataset(scale, seed)
    out_dir = Path(out_dir)
    tables = {
        "raw_customers": (CUSTOMERS_HEADER, data.customers),
        "raw_orders": (ORDERS_HEADER, data.orders),
        "raw_payments": (PAYMENTS_HEADER, data.payments),
    }
    for name, (header, rows) in tables.items():
        write_if_changed(out_dir / f"{name}.csv", _to_csv(header, rows))
    return {name: len(rows) for name, (_header, rows) in tables.items()}


def expected_marts(scale: int = 1, seed: int = 42) -> dict:
    """What the `customers` and `orders` marts must contain for this (scale, seed).

    Computed in pure Python from the same generator, so an end-to-end test can compare the
    database with it. Money is given both in cents (int) and in dollars (Decimal, exact).
    """
    data = build_dataset(scale, seed)
    order_customer = {order_id: user_id for order_id, user_id, _date, _status in data.orders}
    total_cents = sum(amount for *_, amount in data.payments)
    # customer_lifetime_value only counts payments whose order belongs to a known customer
    customer_ids = {customer_id for customer_id, *_ in data.customers}
    clv_cents = sum(
        amount for _id, order_id, _method, amount in data.payments if order_customer.get(order_id) in customer_ids
    )
    by_method: Counter[str] = Counter({method: 0 for method in PAYMENT_METHODS})
    for _id, _order_id, method, amount in data.payments:
        by_method[method] += amount
    orders_per_customer = Counter(order_customer.values())
    return {
        "customers_rows": len(data.customers),
        "orders_rows": len(data.orders),
        "customers_with_orders": len(orders_per_customer),
        "max_number_of_orders": max(orders_per_customer.values(), default=0),
        "customer_lifetime_value_cents": clv_cents,
        "customer_lifetime_value_total": Decimal(clv_cents).scaleb(-2),
        "orders_amount_cents": total_cents,
        "orders_amount_total": Decimal(total_cents).scaleb(-2),
        "amount_cents_by_payment_method": dict(by_method),
        "orders_by_status": dict(sorted(Counter(status for *_, status in data.orders).items())),
        "first_order_date": min(date for _i, _u, date, _s in data.orders),
        "most_recent_order_date": max(date for _i, _u, date, _s in data.orders),
    }


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.generate_data",
        description="Generate the jaffle shop seed CSVs deterministically.",
    )
    parser.add_argument("--scale", type=_positive_int, default=1, help="size multiplier (1 = 100 customers)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    counts = generate(args.out, scale=args.scale, seed=args.seed)
    for name, rows in counts.items():
        print(f"{name}: {rows} rows -> {args.out / (name + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
