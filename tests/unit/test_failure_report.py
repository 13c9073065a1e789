"""A failed run's report names the error first: CI keeps the start of a long failure message, and
a task log's first lines are Airflow's start-up, not the reason it failed."""

from __future__ import annotations

import json

from tools.log_excerpts import error_lines


def _event(level: str, event: str, **extra: object) -> str:
    return json.dumps({"timestamp": "2026-12-03T12:59:04Z", "level": level, "event": event, **extra})


def test_the_errors_of_a_task_log_are_one_short_line_each() -> None:
    log = "\n".join([
        "--- attempt=1.log",
        _event("info", "::group::Pre Execute"),
        _event("info", "Total nodes: 35"),
        _event("info", "Database Error in seed raw_payments (seeds/raw_payments.csv)"),
        _event(
            "error",
            "Task failed with exception",
            error_detail=[{"exc_type": "CosmosDbtRunError", "exc_value": "dbt invocation did not complete"}],
        ),
        "Traceback (most recent call last):",
        "psycopg2.OperationalError: connection to server failed",
    ])  # fmt: skip
    assert error_lines(log).splitlines() == [
        "    Database Error in seed raw_payments (seeds/raw_payments.csv)",
        "    2026-12-03T12:59:04Z Task failed with exception | CosmosDbtRunError: dbt invocation did not complete",
        "    psycopg2.OperationalError: connection to server failed",
    ]


def test_a_log_without_errors_gives_nothing_and_a_long_one_keeps_its_last() -> None:
    assert error_lines("\n".join(_event("info", f"step {n}") for n in range(50))) == ""
    errors = error_lines("\n".join(_event("error", f"failure {n}") for n in range(50)), limit=3).splitlines()
    assert [line.split()[-1] for line in errors] == ["47", "48", "49"]
