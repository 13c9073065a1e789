"""ExecutionMode.LOCAL: each dbt node is one task on the Airflow worker, dbt from its own venv."""

from __future__ import annotations

from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.settings import Settings

DESCRIPTION = "jaffle_shop: one task per dbt node, dbt run on the worker from its own venv"


def build(dag_id: str, settings: Settings) -> DbtDag:
    executable, environment = cosmos_configs.dbt_command(settings)
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=cosmos_configs.DBT_INVOCATION,
        dbt_executable_path=executable,
    )
    return cosmos_configs.cosmos_dag(dag_id, settings, DESCRIPTION, execution, {"env": environment})


def build_operator(settings: Settings) -> tuple[type, dict[str, Any]]:
    """The single-task baseline's operator: `dbt build` of the whole project, on the worker."""
    from cosmos.operators.local import DbtBuildLocalOperator

    executable, environment = cosmos_configs.dbt_command(settings)
    return DbtBuildLocalOperator, {
        "project_dir": str(settings.dbt.project_dir),
        "profile_config": cosmos_configs.profile_config(settings),
        "dbt_executable_path": executable,
        "env": environment,
        "invocation_mode": cosmos_configs.DBT_INVOCATION,
        "install_deps": cosmos_configs.needs_dbt_deps(settings),
    }
