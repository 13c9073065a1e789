"""The baseline: the whole project in one `dbt build` task, the way Cosmos's container guides start.

One task pays dbt's start-up once, but a failure shows only as "dbt build failed". It runs through
the same Cosmos operator, profile and dbt venv as the per-node DAG, so the two compare fairly.
"""

from __future__ import annotations

from airflow.sdk import DAG
from cosmos.operators.local import DbtBuildLocalOperator

from include.blueprint import cosmos_configs
from include.blueprint.settings import Settings, settings


def build_single_task_dag(dag_id: str, config: Settings | None = None) -> DAG:
    config = config or settings()
    # The task does not read the manifest, but a stale one means the deployed code is inconsistent.
    project = cosmos_configs.project_config(config)
    with DAG(
        **cosmos_configs.dag_arguments(dag_id, config, "jaffle_shop: the whole project in one `dbt build` task")
    ) as dag:
        DbtBuildLocalOperator(
            task_id="dbt_build",
            project_dir=str(project.dbt_project_path),
            profile_config=cosmos_configs.profile_config(config),
            dbt_executable_path=str(config.dbt.executable),
            invocation_mode=cosmos_configs.DBT_INVOCATION,
        )
    return dag
