"""ExecutionMode.GCP_CLOUD_RUN_JOB: each dbt node is an execution of a Cloud Run job.

The job (image, resources, POSTGRES_PASSWORD from Secret Manager) is defined by your platform;
Airflow overrides only the command and the plain POSTGRES_* variables per execution.
"""

from __future__ import annotations

from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.container_env import plain_environment
from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._container import ContainerMode

DESCRIPTION = "one Cloud Run job execution per dbt node"


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    job = settings.gcp_cloud_run_job
    return {
        "gcp_conn_id": job.gcp_conn_id,
        "project_id": job.project_id,
        "region": job.region,
        "job_name": job.job_name,
        "env": plain_environment(spec),
    }


def _build_operator_class() -> type:
    from cosmos.operators.gcp_cloud_run_job import DbtBuildGcpCloudRunJobOperator

    return DbtBuildGcpCloudRunJobOperator


MODE = ContainerMode(ExecutionMode.GCP_CLOUD_RUN_JOB, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
