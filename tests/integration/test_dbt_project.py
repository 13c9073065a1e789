"""dbt itself on a real PostgreSQL: the project parses and builds with no warning, and the marts
hold exactly what the generated data implies."""

from __future__ import annotations

import re
import subprocess
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
