"""Several DAGs of one project under a real scheduler (LocalAirflow): a DAG scheduled on another
DAG's models runs when they have been rebuilt, through the stable dbt:// assets, and the trigger
form's full refresh and dbt variables are validated by Airflow and reach (and are logged by) dbt."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.conftest import actual_marts, expected_marts
from tools.airflow_services import LocalAirflow
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, LocalPostgres

pytestmark = pytest.mark.integration
SCHEMA = "e2e_assets"
UPSTREAM, DOWNSTREAM = "jaffle_shop_staging", "jaffle_shop_marts"
DECLARATIONS = [
    {"id": UPSTREAM, "mode": "local", "select": ["path:seeds", "path:models/staging"], "schedule": None},
    {"id": DOWNSTREAM, "mode": "local", "select": ["path:models/marts"],
     "schedule": {"assets": ["jaffle_shop.stg_customers", "jaffle_shop.stg_orders", "jaffle_shop.stg_payments"]}},
]  # fmt: skip


@pytest.fixture
def airflow(
    jaffle_project: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, tmp_path: Path
) -> LocalAirflow:
    env = airflow_env(tmp_path / "airflow", load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": SCHEMA,
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump(DECLARATIONS, default_flow_style=True),
        "BLUEPRINT__DAGS__RETRIES": "0",
    })  # fmt: skip
    return LocalAirflow(tmp_path / "airflow", env, postgres_server.database("airflow_assets_test"))


def test_the_marts_dag_runs_when_the_staging_dag_has_rebuilt_its_models(
    airflow: LocalAirflow, postgres: ConnectionSettings
) -> None:
    with airflow:
        airflow.wait_for_dag(DOWNSTREAM)
        airflow.unpause(DOWNSTREAM)  # DAGs start paused here; this one runs only on the assets
        upstream = airflow.run(UPSTREAM)
        assert upstream.state == "success", f"{upstream}\n{airflow.failure_report(UPSTREAM, upstream.run_id)}"
        downstream = airflow.wait(DOWNSTREAM, airflow.first_run(DOWNSTREAM))
        events = airflow.metadata.query(
            "select a.uri from asset_event e join asset a on a.id = e.asset_id where a.uri like 'dbt://%%' order by 1"
        )
    assert downstream.state == "success", f"{downstream}\n{airflow.failure_report(DOWNSTREAM, downstream.run_id)}"
    assert actual_marts(postgres, SCHEMA) == expected_marts(scale=1)
    assert {uri for (uri,) in events} >= {"dbt://jaffle_shop/stg_orders", "dbt://jaffle_shop/customers"}


def test_full_refresh_and_dbt_vars_are_validated_and_reach_dbt(airflow: LocalAirflow) -> None:
    with airflow:
        airflow.wait_for_dag(UPSTREAM)
        with pytest.raises(RuntimeError, match="full_refresh"):
            airflow.trigger(UPSTREAM, {"full_refresh": "yes please"})
        run_id = airflow.trigger(UPSTREAM, {"full_refresh": True, "dbt_vars": {"run_label": "backfill-42"}})
        run = airflow.wait(UPSTREAM, run_id)
        seed_log = airflow.task_log(UPSTREAM, run_id, "raw_orders_seed_build")
    assert run.state == "success", f"{run}\n{airflow.failure_report(UPSTREAM, run_id)}"
    assert "--full-refresh" in seed_log
    assert "run_label" in seed_log  # the task log is JSON: the command's quotes are escaped
    assert "backfill-42" in seed_log
