"""ExecutionMode.VIRTUALENV: like local, but Cosmos builds and caches dbt's venv on the worker.

For workers whose image you cannot change (e.g. MWAA): the venv is built from dbt's own lock, so
it runs exactly the dbt the local venv and the runtime image run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.dag_specs import DagSpec

DESCRIPTION = "one task per dbt node, dbt in a venv Cosmos builds and caches on the worker"


def locked_requirements(lock: Path) -> list[str]:
    """The pinned lines of a uv/pip-compile lock, environment markers kept, comments dropped."""
    lines = (line.split(" #")[0].strip() for line in lock.read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def build(spec: DagSpec) -> DbtDag:
    settings = spec.settings
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.VIRTUALENV,
        virtualenv_dir=settings.execution.virtualenv_dir,
    )
    operator_args = {
        "py_requirements": locked_requirements(settings.execution.virtualenv_requirements),
        "py_system_site_packages": False,
    }
    return cosmos_configs.cosmos_dag(spec, DESCRIPTION, execution, operator_args)


def freshness_operator(spec: DagSpec) -> tuple[type, dict[str, Any]]:
    """`dbt source freshness` in the same cached venv (the mode has no single-task `dbt build`)."""
    from cosmos.operators.virtualenv import DbtSourceVirtualenvOperator

    return DbtSourceVirtualenvOperator, worker_arguments(spec)


def worker_arguments(spec: DagSpec) -> dict[str, Any]:
    """Arguments of a Cosmos virtualenv operator running one dbt command of the project."""
    settings = spec.settings
    return {
        "project_dir": str(spec.project_dir),
        "profile_config": cosmos_configs.profile_config(spec),
        "py_requirements": locked_requirements(settings.execution.virtualenv_requirements),
        "py_system_site_packages": False,
        "virtualenv_dir": settings.execution.virtualenv_dir,
        "install_deps": cosmos_configs.needs_dbt_deps(spec.project_dir),
    }
