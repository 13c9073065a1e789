"""ExecutionMode.LOCAL: each dbt node is one task on the Airflow worker, dbt from its own venv."""

from __future__ import annotations

from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.dag_specs import DagSpec

DESCRIPTION = "one task per dbt node, dbt run on the worker from its own venv"


def build(spec: DagSpec) -> DbtDag:
    executable, environment = cosmos_configs.dbt_command(spec.settings)
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=cosmos_configs.DBT_INVOCATION,
        dbt_executable_path=executable,
    )
    return cosmos_configs.cosmos_dag(spec, DESCRIPTION, execution, {"env": environment})


def build_operator(spec: DagSpec) -> tuple[type, dict[str, Any]]:
    """The `dbt build` operator of layer and project tasks, on the worker."""
    from cosmos.operators.local import DbtBuildLocalOperator

    executable, environment = cosmos_configs.dbt_command(spec.settings)
    return DbtBuildLocalOperator, {
        "project_dir": str(spec.project_dir),
        "profile_config": cosmos_configs.profile_config(spec),
        "dbt_executable_path": executable,
        "env": environment,
        "invocation_mode": cosmos_configs.DBT_INVOCATION,
        "install_deps": cosmos_configs.needs_dbt_deps(spec.project_dir),
        "cache_dir": cosmos_configs.partial_parse_cache(spec),
    }
