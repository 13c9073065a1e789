"""Speed does not cost correctness, under a real scheduler (LocalAirflow) with the shipped defaults
(the task preload among them): a failing model fails its own task and only what depends on it, and
rerunning just that task after the fix completes the run; a second run of a DAG waits for the first
instead of overlapping it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import actual_marts, expected_marts
from tests.dags.test_dag_integrity import REL_ORDERS
from tools.airflow_services import LocalAirflow, RunResult
from tools.local_env import airflow_env
from tools.manifest import parse_project
from tools.postgres import ConnectionSettings, LocalPostgres

pytestmark = pytest.mark.integration
BROKEN = "where no_such_column = 1"


@pytest.fixture
def project_copy(jaffle_project: Path, tmp_path: Path) -> Path:
    """A copy of jaffle_shop the test may break; its manifest is parsed from the copy."""
    copy = tmp_path / "jaffle_shop"
    shutil.copytree(jaffle_project, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    parse_project(copy)
    return copy


def _set_orders_broken(project: Path, broken: bool) -> None:
    model = project / "models" / "marts" / "orders.sql"
    sql = model.read_text().replace(f" {BROKEN}", "")
    if broken:
        sql = sql.replace("from {{ ref('stg_orders') }}", f"from {{{{ ref('stg_orders') }}}} {BROKEN}", 1)
        assert BROKEN in sql, "orders.sql no longer reads stg_orders the way this test breaks it"
    model.write_text(sql)
    parse_project(project)  # as a developer would run `make manifest`


def _env(tmp_path: Path, postgres: ConnectionSettings, project: Path, schema: str) -> dict[str, str]:
    env = airflow_env(tmp_path / "airflow", load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR": str(project),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": schema,
        "BLUEPRINT__DAGS__RETRIES": "0",  # the failure must stay a failure within the test
        "BLUEPRINT__DAGS__SCHEDULE": "null",  # only the runs the test triggers
    })  # fmt: skip
    return env


def _airflow_with_broken_orders(
    tmp_path: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, project: Path, name: str
) -> LocalAirflow:
    _set_orders_broken(project, broken=True)
    env = _env(tmp_path, postgres, project, "e2e_rerun")
    env["BLUEPRINT__EXECUTION__ENABLED_MODES"] = "[local, watcher]"
    return LocalAirflow(tmp_path / "airflow", env, postgres_server.database(f"airflow_rerun_{name}"))  # fmt: skip


def _report(airflow: LocalAirflow, run: RunResult) -> str:
    return f"{run}\n{airflow.failure_report(run.dag_id, run.run_id)}"


def _not_successful(run: RunResult) -> dict[str, str]:
    return {task: state for task, state in run.tasks.items() if state != "success"}


def test_a_failing_model_fails_only_its_task_and_reruns_alone(
    project_copy: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    with _airflow_with_broken_orders(tmp_path, postgres_server, postgres, project_copy, "local") as airflow:
        run = airflow.run("jaffle_shop_local")
        assert _not_successful(run) == {"orders_model_build": "failed", REL_ORDERS: "upstream_failed"}, _report(
            airflow, run
        )
        _set_orders_broken(project_copy, broken=False)
        assert airflow.clear("jaffle_shop_local", run.run_id, ["orders_model_build"]) == sorted(_not_successful(run))
        run = airflow.wait("jaffle_shop_local", run.run_id)
        scheduler_log = (airflow.service_logs / "scheduler.log").read_text()
    assert run.state == "success", _report(airflow, run)
    assert actual_marts(postgres, "e2e_rerun") == expected_marts(scale=1)
    # These tasks were forked from a scheduler that had imported what they import (task_preload.py).
    assert "blueprint task preload: " in scheduler_log
    assert "preload skipped" not in scheduler_log


def test_watcher_shows_a_failing_model_as_its_task_and_reruns_it_alone(
    project_copy: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    with _airflow_with_broken_orders(tmp_path, postgres_server, postgres, project_copy, "watcher") as airflow:
        run = airflow.run("jaffle_shop_watcher")
        # The producer's `dbt build` fails with the model. Cosmos reports a test that reads two
        # models (relationships) in each model's test task, so customers.test fails with it.
        assert _not_successful(run) == {
            "dbt_producer_watcher": "failed", "orders.run": "failed", "orders.test": "upstream_failed",
            "customers.test": "failed",
        }, _report(airflow, run)  # fmt: skip
        _set_orders_broken(project_copy, broken=False)
        # A retried consumer runs its own model, alone (Cosmos's watcher retry).
        airflow.clear("jaffle_shop_watcher", run.run_id, ["orders.run"], downstream=False)
        run = airflow.wait("jaffle_shop_watcher", run.run_id)
    assert run.tasks["orders.run"] == "success", _report(airflow, run)
    assert actual_marts(postgres, "e2e_rerun") == expected_marts(scale=1)


def test_a_second_run_waits_for_the_first(
    jaffle_project: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    env = _env(tmp_path, postgres, jaffle_project, "e2e_overlap")
    with LocalAirflow(tmp_path / "airflow", env, postgres_server.database("airflow_overlap_test")) as airflow:
        airflow.wait_for_dag("jaffle_shop_local")
        run_ids = [airflow.trigger("jaffle_shop_local") for _ in range(2)]
        results = [airflow.wait("jaffle_shop_local", run_id) for run_id in run_ids]
        spans = airflow.run_spans("jaffle_shop_local")
    assert [result.state for result in results] == ["success", "success"], "\n".join(
        _report(airflow, result) for result in results
    )
    (first_start, first_end), (second_start, _) = sorted(spans[run_id] for run_id in run_ids)
    assert second_start >= first_end > first_start, "the two runs overlapped"
    assert actual_marts(postgres, "e2e_overlap") == expected_marts(scale=1)
