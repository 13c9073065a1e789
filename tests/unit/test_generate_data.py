"""tools/generate_data.py: determinism, scaling, referential integrity, freshness, expectations."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tools.generate_data import (
    PAYMENT_METHODS,
    STATUSES,
    build_dataset,
    expected_marts,
    generate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ("raw_customers", "raw_orders", "raw_payments")


def read_table(out_dir: Path, name: str) -> list[dict[str, str]]:
    with open(out_dir / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scale1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("scale1")
    return out, generate(out, scale=1, seed=42)


def test_writes_exactly_the_three_seed_files(scale1):
    out, counts = scale1
    assert sorted(path.name for path in out.iterdir()) == [f"{t}.csv" for t in TABLES]
    assert list(counts) == list(TABLES)
    for name in TABLES:
        assert counts[name] == len(read_table(out, name))


def test_scale_one_is_the_small_default_dataset(scale1):
    _out, counts = scale1
    assert counts == {"raw_customers": 100, "raw_orders": 99, "raw_payments": 110}


def test_same_parameters_give_byte_identical_files(tmp_path, scale1):
    first, _ = scale1
    second = tmp_path / "again"
    generate(second, scale=1, seed=42)
    for name in TABLES:
        assert (first / f"{name}.csv").read_bytes() == (second / f"{name}.csv").read_bytes()


def test_another_seed_gives_different_data(tmp_path, scale1):
    first, _ = scale1
    generate(tmp_path, scale=1, seed=7)
    assert (first / "raw_orders.csv").read_bytes() != (tmp_path / "raw_orders.csv").read_bytes()


def test_files_use_unix_line_endings_and_a_header(scale1):
    out, _ = scale1
    headers = {
        "raw_customers": b"id,first_name,last_name\n",
        "raw_orders": b"id,user_id,order_date,status\n",
        "raw_payments": b"id,order_id,payment_method,amount\n",
    }
    for name, header in headers.items():
        content = (out / f"{name}.csv").read_bytes()
        assert content.startswith(header)
        assert b"\r" not in content
        assert content.endswith(b"\n")


def test_default_seed_is_42(tmp_path, scale1):
    first, _ = scale1
    generate(tmp_path)
    for name in TABLES:
        assert (first / f"{name}.csv").read_bytes() == (tmp_path / f"{name}.csv").read_bytes()


def test_scale_multiplies_every_table_linearly(tmp_path):
    counts = generate(tmp_path, scale=3)
    assert counts == {"raw_customers": 300, "raw_orders": 297, "raw_payments": 330}
    assert len(read_table(tmp_path, "raw_customers")) == 3 * 100


@pytest.mark.parametrize("scale", [0, -1, 1.5, True])
def test_rejects_invalid_scale(tmp_path, scale):
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        generate(tmp_path, scale=scale)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("scale", [1, 3])
def test_referential_integrity_and_value_domains(tmp_path, scale):
    generate(tmp_path, scale=scale)
    customers = read_table(tmp_path, "raw_customers")
    orders = read_table(tmp_path, "raw_orders")
    payments = read_table(tmp_path, "raw_payments")

    customer_ids = [int(row["id"]) for row in customers]
    order_ids = [int(row["id"]) for row in orders]
    payment_ids = [int(row["id"]) for row in payments]
    for ids in (customer_ids, order_ids, payment_ids):
        assert ids == list(range(1, len(ids) + 1))  # unique, dense, ordered primary keys

    assert {int(row["user_id"]) for row in orders} <= set(customer_ids)
    assert {int(row["order_id"]) for row in payments} <= set(order_ids)
    assert {int(row["order_id"]) for row in payments} == set(order_ids)  # every order is paid

    assert {row["status"] for row in orders} <= set(STATUSES)
    assert {row["payment_method"] for row in payments} <= set(PAYMENT_METHODS)
    assert all(int(row["amount"]) > 0 for row in payments)
    assert all(row["amount"].isdigit() for row in payments)  # integer cents, no decimals
    assert all(row["first_name"] and row["last_name"] for row in customers)

    dates = [dt.date.fromisoformat(row["order_date"]) for row in orders]
    assert dates == sorted(dates)  # order ids increase with the order date
    assert dates[0] >= dt.date(2024, 1, 1)
    assert dates[-1] < dt.date(2025, 1, 1)


def test_rerun_with_same_parameters_does_not_touch_files(tmp_path):
    generate(tmp_path, scale=1)
    paths = [tmp_path / f"{name}.csv" for name in TABLES]
    old = 1_000_000_000  # 2001: any rewrite would move the mtime to now
    for path in paths:
        os.utime(path, ns=(old * 10**9, old * 10**9))
    generate(tmp_path, scale=1)
    assert [path.stat().st_mtime_ns for path in paths] == [old * 10**9] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_rerun_with_other_parameters_rewrites_files(tmp_path):
    generate(tmp_path, scale=1)
    path = tmp_path / "raw_customers.csv"
    os.utime(path, ns=(10**18, 10**18))
    generate(tmp_path, scale=2)
    assert path.stat().st_mtime_ns != 10**18
    assert len(read_table(tmp_path, "raw_customers")) == 200


def test_modified_file_is_restored(tmp_path):
    generate(tmp_path, scale=1)
    path = tmp_path / "raw_payments.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"credit_card", b"cash"))
    generate(tmp_path, scale=1)
    assert path.read_bytes() == original
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_build_dataset_matches_written_files(scale1):
    out, _ = scale1
    data = build_dataset(1, 42)
    assert [int(row["user_id"]) for row in read_table(out, "raw_orders")] == [
        user_id for _id, user_id, _date, _status in data.orders
    ]


@pytest.mark.parametrize(("scale", "seed"), [(1, 42), (2, 5)])
def test_expected_marts_agree_with_the_csvs(tmp_path, scale, seed):
    """Recompute the marts from the CSVs independently and compare with expected_marts."""
    generate(tmp_path, scale=scale, seed=seed)
    customers = read_table(tmp_path, "raw_customers")
    orders = read_table(tmp_path, "raw_orders")
    payments = read_table(tmp_path, "raw_payments")
    expected = expected_marts(scale, seed)

    orders_per_customer = Counter(int(row["user_id"]) for row in orders)
    cents = [int(row["amount"]) for row in payments]
    by_method = Counter()
    for row in payments:
        by_method[row["payment_method"]] += int(row["amount"])

    assert expected["customers_rows"] == len(customers) == 100 * scale
    assert expected["orders_rows"] == len(orders)
    assert expected["customers_with_orders"] == len(orders_per_customer)
    assert 0 < expected["customers_with_orders"] < len(customers)  # some customers never order
    assert expected["max_number_of_orders"] == max(orders_per_customer.values())
    assert expected["customer_lifetime_value_cents"] == sum(cents)
    assert expected["customer_lifetime_value_total"] == Decimal(sum(cents)) / 100
    assert expected["orders_amount_total"] == Decimal(sum(cents)) / 100
    assert expected["amount_cents_by_payment_method"] == {m: by_method[m] for m in PAYMENT_METHODS}
    assert expected["orders_by_status"] == dict(Counter(row["status"] for row in orders))
    assert expected["first_order_date"] == min(dt.date.fromisoformat(r["order_date"]) for r in orders)
    assert expected["most_recent_order_date"] == max(dt.date.fromisoformat(r["order_date"]) for r in orders)


def test_cli_writes_files_and_prints_one_line_per_table(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.generate_data", "--scale", "2", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    expected = [("raw_customers", 200), ("raw_orders", 198), ("raw_payments", 220)]
    for line, (name, rows) in zip(lines, expected, strict=True):
        assert line.startswith(f"{name}: {rows} rows")
    assert len(read_table(tmp_path, "raw_orders")) == 198


def test_cli_rejects_scale_zero(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.generate_data", "--scale", "0", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert not any(tmp_path.iterdir())
