"""ExecutionMode.GCP_CLOUD_RUN_JOB: each dbt node is an execution of a Cloud Run job.

The job (image, resources, POSTGRES_PASSWORD from Secret Manager) is defined by your platform;
Airflow overrides only the command and the plain POSTGRES_* variables per execution.
"""

from __future__ import annotations

from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.container_env import plain_environment
from include.blueprint.settings import Settings

DESCRIPTION = "jaffle_shop: one Cloud Run job execution per dbt node"


def operator_args(settings: Settings) -> dict[str, Any]:
    job = settings.gcp_cloud_run_job
    return {
        "gcp_conn_id": job.gcp_conn_id,
        "project_id": job.project_id,
        "region": job.region,
        "job_name": job.job_name,
        "env": plain_environment(settings),
    }


def build(dag_id: str, settings: Settings) -> DbtDag:
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.GCP_CLOUD_RUN_JOB, dbt_project_path=settings.runtime.project_dir
    )
    return cosmos_configs.cosmos_dag(
        dag_id, settings, DESCRIPTION, execution, operator_args(settings), in_container=True
    )


def build_operator(settings: Settings) -> tuple[type, dict[str, Any]]:
    from cosmos.operators.gcp_cloud_run_job import DbtBuildGcpCloudRunJobOperator

    return DbtBuildGcpCloudRunJobOperator, {"project_dir": settings.runtime.project_dir, **operator_args(settings)}
