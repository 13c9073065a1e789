"""dbt itself on a real PostgreSQL: the project parses and builds with no warning, and the marts
hold exactly what the generated data implies."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import actual_marts, dbt_env, expected_marts
from tools.local_env import DBT_BIN
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration
SCHEMA = "dbt_cli"


def _dbt(project: Path, env: dict[str, str], *args: str) -> str:
    # --warn-error turns any warning (deprecations included) into a failed command.
    command = [str(DBT_BIN / "dbt"), "--warn-error", "--no-use-colors", *args]
    result = subprocess.run(
        [*command, "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def _assert_no_warnings(output: str) -> None:
    noisy = re.compile(r"\[WARN|\bwarning\b|deprecat", re.IGNORECASE)
    assert [line for line in output.splitlines() if noisy.search(line)] == []


def test_parse_has_no_warnings(jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path) -> None:
    env = dbt_env(postgres, SCHEMA)
    output = _dbt(jaffle_project, env, "parse", "--no-partial-parse", "--target-path", str(tmp_path))
    _assert_no_warnings(output)
    assert (tmp_path / "manifest.json").exists()


def test_build_passes_with_no_warnings_and_correct_marts(
    jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = dbt_env(postgres, SCHEMA)
    output = _dbt(jaffle_project, env, "build", "--target-path", str(tmp_path))
    _assert_no_warnings(output)
    assert "ERROR=0" in output
    assert "SKIP=0" in output
    assert actual_marts(postgres, SCHEMA) == expected_marts(scale=1)


def test_wrong_password_fails_fast_with_a_clear_error(jaffle_project: Path, postgres: ConnectionSettings) -> None:
    env = {**dbt_env(postgres, SCHEMA), "POSTGRES_PASSWORD": "not-the-password"}
    result = subprocess.run(
        [str(DBT_BIN / "dbt"), "debug", "--project-dir", str(jaffle_project), "--profiles-dir", str(jaffle_project)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "password authentication failed" in result.stdout


def _wait_for_a_blocked_session(postgres: ConnectionSettings, dbt: subprocess.Popen, timeout: float = 120) -> None:
    """Until a session of this database waits on a lock (or dbt ended, which the test then reports)."""
    waiting = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
    deadline = time.monotonic() + timeout
    while dbt.poll() is None and postgres.query(waiting)[0][0] == 0:
        assert time.monotonic() < deadline, f"dbt did not reach its schema creation within {timeout:.0f} s"
        time.sleep(0.2)


def test_a_fresh_schema_created_by_concurrent_invocations_fails_none(
    jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    """The session below stands in for another task's dbt midway through the project's
    postgres__create_schema (macros/blueprint_create_schema.sql): it holds the macro's lock and has
    created the schema, not yet committed. This dbt must wait for it, then find the schema. With
    dbt's own macro it would fail on a duplicate key in pg_namespace once the other commits."""
    schema = "dbt_schema_race"
    other = postgres.connect()
    try:
        with other.cursor() as cursor:
            cursor.execute("select pg_advisory_xact_lock(hashtext('dbt create schema'), hashtext(%s))", (schema,))
            cursor.execute(f'create schema "{schema}"')
        dbt = subprocess.Popen(
            [str(DBT_BIN / "dbt"), "--no-use-colors", "seed", "--select", "raw_customers", "--target-path",
             str(tmp_path), "--project-dir", str(jaffle_project), "--profiles-dir", str(jaffle_project)],
            env=dbt_env(postgres, schema), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            _wait_for_a_blocked_session(postgres, dbt)
            other.commit()
            output, _ = dbt.communicate(timeout=300)
        finally:
            dbt.kill()
            dbt.wait()
    finally:
        other.close()
    assert dbt.returncode == 0, output[-3000:]
    assert postgres.query(f'select count(*) from "{schema}".raw_customers')[0][0] > 0
