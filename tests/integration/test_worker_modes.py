"""The modes that run dbt on the Airflow worker build the same marts as the local mode, for real:
virtualenv through `dag.test()`, watcher under a real scheduler and triggerer (its deferrable
consumers can deadlock under `dag.test()`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import actual_marts, expected_marts
from tests.dags.test_dag_integrity import JAFFLE_SHOP_MODEL_TASKS, JAFFLE_SHOP_WATCHER_TASKS
from tests.integration.test_local_dags import _run_dag
from tools.airflow_db import migrate_metadata_db
from tools.airflow_services import LocalAirflow
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, LocalPostgres

pytestmark = pytest.mark.integration


def _dev_env(airflow_home: Path, postgres: ConnectionSettings, schema: str) -> dict[str, str]:
    env = airflow_env(airflow_home, load_settings({"BLUEPRINT_ENV": "dev"}), postgres)
    env.update({"BLUEPRINT_ENV": "dev", "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": schema})
    env["BLUEPRINT__EXECUTION__VIRTUALENV_DIR"] = str(airflow_home / "cosmos-virtualenv")
    return env


def test_virtualenv_mode_builds_the_same_marts(
    jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = _dev_env(tmp_path / "airflow", postgres, "e2e_virtualenv")
    migrate_metadata_db(env)
    summary = _run_dag("jaffle_shop_virtualenv", env)
    assert summary["tasks"] == dict.fromkeys(JAFFLE_SHOP_MODEL_TASKS, "success"), summary
    assert actual_marts(postgres, "e2e_virtualenv") == expected_marts(scale=1)


def test_watcher_mode_under_a_real_scheduler_builds_the_same_marts(
    jaffle_project: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = _dev_env(tmp_path / "airflow", postgres, "e2e_watcher")
    with LocalAirflow(tmp_path / "airflow", env, postgres_server.database("airflow_watcher_test")) as airflow:
        result = airflow.run("jaffle_shop_watcher")
    producer_log = airflow.task_log("jaffle_shop_watcher", result.run_id, "dbt_producer_watcher")
    assert result.state == "success", (
        f"{result}\n{airflow.failure_report(result.dag_id, result.run_id)}\n--- producer\n{producer_log[-8000:]}"
    )
    # A producer that needed a retry would show as skipped (Cosmos never runs the build twice):
    # its first attempt's log says why.
    assert result.tasks == dict.fromkeys([*JAFFLE_SHOP_WATCHER_TASKS, "dbt_producer_watcher"], "success"), (
        f"{result.tasks}\n{airflow.failure_report(result.dag_id, result.run_id)}\n--- producer\n{producer_log[-8000:]}"
    )
    assert actual_marts(postgres, "e2e_watcher") == expected_marts(scale=1)
