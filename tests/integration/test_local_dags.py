"""The local-mode DAGs run for real (`dag.test()` through tools.run_dag) against a real
PostgreSQL, and the main job (`make run`) works on the embedded server and reports problems
as one line each."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT, actual_marts, expected_marts
from tests.dags.test_dag_integrity import JAFFLE_SHOP_MODEL_TASKS
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, LocalPostgres, free_port

pytestmark = pytest.mark.integration


def run_dag_process(dag_id: str, env: dict[str, str]) -> tuple[dict[str, object], str]:
    """Run a DAG with `dag.test()` in a child process: its JSON summary and everything it logged."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.run_dag", dag_id],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # The summary is the last line run_dag prints; a listener (OpenLineage's) may still log after it.
    summary = next((line for line in reversed(result.stdout.splitlines()) if line.startswith('{"dag_id"')), None)
    assert summary is not None, (result.stdout + result.stderr)[-3000:]
    return json.loads(summary), result.stdout + result.stderr


def _run_dag(dag_id: str, env: dict[str, str]) -> dict[str, object]:
    return run_dag_process(dag_id, env)[0]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow")


def _env_for(airflow_home: Path, postgres: ConnectionSettings, schema: str) -> dict[str, str]:
    env = airflow_env(airflow_home, load_settings(), postgres)
    env["BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA"] = schema
    migrate_metadata_db(env)
    return env


def test_local_per_node_dag_builds_the_marts(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path
) -> None:
    summary = _run_dag("jaffle_shop_local", _env_for(airflow_home, postgres, "e2e_local"))
    assert summary["state"] == "success", summary
    assert summary["tasks"] == dict.fromkeys(JAFFLE_SHOP_MODEL_TASKS, "success")
    assert actual_marts(postgres, "e2e_local") == expected_marts(scale=1)


def test_single_task_dag_builds_the_same_marts(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path
) -> None:
    """Twice: the second run reuses dbt's partial parse from the DAG's Cosmos cache, as per-model
    tasks do, instead of parsing the project from scratch."""
    env = _env_for(airflow_home, postgres, "e2e_single")
    for _ in range(2):
        summary, log = run_dag_process("jaffle_shop_local_single_task", env)
        assert summary["tasks"] == {"dbt_build": "success"}, summary
        assert actual_marts(postgres, "e2e_single") == expected_marts(scale=1)
    assert "Unable to do partial parsing" not in log, f"the second run parsed from scratch:\n{log[-3000:]}"


@pytest.fixture(autouse=True)
def _no_embedded_server_left(tmp_path: Path) -> Iterator[None]:
    """The main job's embedded server outlives it by design (`make run` reuses it); a test's must not."""
    yield
    LocalPostgres(tmp_path / "local" / "postgres", free_port()).destroy()


def _main_job(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("POSTGRES_")}
    return subprocess.run(
        [sys.executable, "-m", "tools.main_job"],
        env={**clean, "BLUEPRINT_LOCAL_DIR": str(tmp_path / "local"), **env},
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_main_job_on_the_embedded_server_twice(jaffle_project: Path, tmp_path: Path) -> None:
    """`make run` from nothing, then again reusing what the first run built; its server keeps
    PostgreSQL's durable defaults, where the tests' own throwaway server runs without fsync."""
    port = str(free_port())
    for attempt in ("first", "second"):
        result = _main_job(tmp_path, POSTGRES_PORT=port)
        assert result.returncode == 0, f"{attempt} run:\n{result.stdout}\n{result.stderr[-3000:]}"
        assert f"using embedded PostgreSQL on 127.0.0.1:{port}" in result.stdout
        assert "jaffle_shop_local: success" in result.stdout
        assert f"tasks: {len(JAFFLE_SHOP_MODEL_TASKS)} success" in result.stdout
        # every model's state and rows; jaffle_shop's marts checked against the generated data
        assert re.search(r"jaffle_shop\.customers +success +100 rows \(ok\)", result.stdout), result.stdout
        assert re.search(r"jaffle_shop\.orders +success +99 rows \(ok\)", result.stdout), result.stdout
        assert re.search(r"jaffle_shop\.stg_payments +success +110 rows\n", result.stdout), result.stdout
    embedded = LocalPostgres(tmp_path / "local" / "postgres", int(port)).settings()
    assert embedded.query("show fsync") == [("on",)]


def test_the_tests_own_server_runs_without_fsync(postgres: ConnectionSettings) -> None:
    assert postgres.query("show fsync") == [("off",)]
    assert postgres.query("show synchronous_commit") == [("off",)]


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]


def test_main_job_names_missing_variables(tmp_path: Path) -> None:
    result = _main_job(tmp_path, POSTGRES_HOST="127.0.0.1", POSTGRES_USER="someone")
    _assert_one_line_error(result, "POSTGRES_PASSWORD, POSTGRES_DATABASE is not set", "unset POSTGRES_HOST")


def test_main_job_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _main_job(tmp_path, POSTGRES_PORT=str(port))
    _assert_one_line_error(result, f"port {port} is already in use", "POSTGRES_PORT=")


def test_main_job_reports_an_unreachable_database(tmp_path: Path) -> None:
    result = _main_job(
        tmp_path, POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(free_port()),
        POSTGRES_USER="u", POSTGRES_PASSWORD="p", POSTGRES_DATABASE="d",
    )  # fmt: skip
    _assert_one_line_error(result, "cannot connect to PostgreSQL at 127.0.0.1:", "Check the POSTGRES_* variables")


def test_main_job_reports_a_wrong_password(postgres: ConnectionSettings, tmp_path: Path) -> None:
    result = _main_job(
        tmp_path, POSTGRES_HOST=postgres.host, POSTGRES_PORT=str(postgres.port),
        POSTGRES_USER=postgres.user, POSTGRES_PASSWORD="wrong", POSTGRES_DATABASE=postgres.database,
    )  # fmt: skip
    _assert_one_line_error(result, "password authentication failed")
    assert "wrong" not in result.stdout + result.stderr.replace("wrong password", "")
