"""ExecutionMode.AWS_ECS: each dbt node runs as an ECS task of a task definition your platform owns.

The task definition names the dbt runtime image and maps POSTGRES_PASSWORD to a Secrets Manager
or SSM secret; Airflow only overrides the command and the plain POSTGRES_* variables.
"""

from __future__ import annotations

from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.container_env import plain_environment
from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._container import ContainerMode

DESCRIPTION = "one Amazon ECS task of the dbt runtime image per dbt node"


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    ecs = settings.aws_ecs
    return {
        "aws_conn_id": ecs.aws_conn_id,
        "region_name": ecs.region,
        "cluster": ecs.cluster,
        "task_definition": ecs.task_definition,
        "container_name": ecs.container_name,
        "launch_type": ecs.launch_type,
        "network_configuration": {
            "awsvpcConfiguration": {
                "subnets": list(ecs.subnets),
                "securityGroups": list(ecs.security_groups),
                "assignPublicIp": "ENABLED" if ecs.assign_public_ip else "DISABLED",
            }
        },
        "env": plain_environment(spec),
    }


def _build_operator_class() -> type:
    from cosmos.operators.aws_ecs import DbtBuildAwsEcsOperator

    return DbtBuildAwsEcsOperator


MODE = ContainerMode(ExecutionMode.AWS_ECS, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
