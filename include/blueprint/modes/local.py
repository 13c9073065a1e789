"""ExecutionMode.LOCAL: each dbt node is one task on the Airflow worker, dbt from its own venv."""

from __future__ import annotations

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.settings import Settings


def build(dag_id: str, settings: Settings) -> DbtDag:
    return DbtDag(
        **cosmos_configs.dag_arguments(
            dag_id, settings, "jaffle_shop: one task per dbt node, dbt run on the worker from its own venv"
        ),
        project_config=cosmos_configs.project_config(settings),
        profile_config=cosmos_configs.profile_config(settings),
        render_config=cosmos_configs.render_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=cosmos_configs.DBT_INVOCATION,
            dbt_executable_path=settings.dbt.executable,
        ),
    )
