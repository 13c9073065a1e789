"""ExecutionMode.AWS_EKS: the kubernetes mode's pods, on an EKS cluster reached through AWS credentials."""

from __future__ import annotations

from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._container import ContainerMode
from include.blueprint.modes.kubernetes import pod_args
from include.blueprint.names import NAME_TEMPLATE

DESCRIPTION = "one pod of the dbt runtime image per dbt node on Amazon EKS"


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    eks = settings.aws_eks
    return {
        **pod_args(spec),
        "pod_name": NAME_TEMPLATE,
        "cluster_name": eks.cluster_name,
        "region": eks.region,
        "aws_conn_id": eks.aws_conn_id,
    }


def _build_operator_class() -> type:
    from cosmos.operators.aws_eks import DbtBuildAwsEksOperator

    return DbtBuildAwsEksOperator


MODE = ContainerMode(ExecutionMode.AWS_EKS, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
