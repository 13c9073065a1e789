"""The docker-mode DAGs, for real: Cosmos's ExecutionMode.DOCKER through the Docker provider's
operator, a real engine, the dbt runtime image and the real PostgreSQL. Same marts as local."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import actual_marts, expected_marts
from tests.dags.test_dag_integrity import JAFFLE_SHOP_MODEL_TASKS
from tests.integration.test_local_dags import _run_dag, run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.container]


@pytest.fixture(scope="module")
def docker_mode_env(dbt_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The engine here runs without a bridge network, so containers share the host's (and reach
    # the test PostgreSQL on 127.0.0.1); on a laptop the default "bridge" needs a reachable host.
    return {
        "BLUEPRINT__EXECUTION__ENABLED_MODES": "[docker]",
        "BLUEPRINT__RUNTIME__IMAGE": dbt_image,
        "BLUEPRINT__DOCKER__NETWORK_MODE": "host",
    }


def _env(overrides: dict[str, str], home: Path, postgres: ConnectionSettings, schema: str) -> dict[str, str]:
    env = airflow_env(home, load_settings(overrides), postgres)
    env.update({**overrides, "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": schema})
    migrate_metadata_db(env)
    return env


def test_docker_mode_dag_builds_the_same_marts(
    jaffle_project: Path, docker_mode_env: dict[str, str], postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = _env(docker_mode_env, tmp_path / "airflow", postgres, "e2e_docker")
    summary, logs = run_dag_process("jaffle_shop_docker", env)
    assert summary["tasks"] == dict.fromkeys(JAFFLE_SHOP_MODEL_TASKS, "success"), summary
    assert actual_marts(postgres, "e2e_docker") == expected_marts(scale=1)
    # The password reached every container (the marts exist) yet appears nowhere in the task logs.
    assert "Running command: ['dbt', 'build', '--select', 'fqn:jaffle_shop.staging.stg_customers'" in logs
    assert postgres.password not in logs


def test_docker_single_task_dag_builds_the_same_marts(
    jaffle_project: Path, docker_mode_env: dict[str, str], postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = _env(docker_mode_env, tmp_path / "airflow", postgres, "e2e_docker_single")
    summary = _run_dag("jaffle_shop_docker_single_task", env)
    assert summary["tasks"] == {"dbt_build": "success"}, summary
    assert actual_marts(postgres, "e2e_docker_single") == expected_marts(scale=1)
