"""ExecutionMode.AWS_EKS: the kubernetes mode's pods, on an EKS cluster reached through AWS credentials."""

from __future__ import annotations

from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.modes.kubernetes import pod_args
from include.blueprint.names import NAME_TEMPLATE
from include.blueprint.settings import Settings

DESCRIPTION = "jaffle_shop: one pod of the dbt runtime image per dbt node on Amazon EKS"


def operator_args(settings: Settings) -> dict[str, Any]:
    eks = settings.aws_eks
    return {
        **pod_args(settings),
        "pod_name": NAME_TEMPLATE,
        "cluster_name": eks.cluster_name,
        "region": eks.region,
        "aws_conn_id": eks.aws_conn_id,
    }


def build(dag_id: str, settings: Settings) -> DbtDag:
    execution = ExecutionConfig(execution_mode=ExecutionMode.AWS_EKS, dbt_project_path=settings.runtime.project_dir)
    return cosmos_configs.cosmos_dag(
        dag_id, settings, DESCRIPTION, execution, operator_args(settings), in_container=True
    )


def build_operator(settings: Settings) -> tuple[type, dict[str, Any]]:
    from cosmos.operators.aws_eks import DbtBuildAwsEksOperator

    return DbtBuildAwsEksOperator, {"project_dir": settings.runtime.project_dir, **operator_args(settings)}
