"""ExecutionMode.KUBERNETES: each dbt node runs in a pod of the dbt runtime image.

The database password comes from a Kubernetes Secret (kubernetes.password_secret_name/_key),
which your platform creates; Airflow never handles it. The aws_eks mode reuses these pod settings.
"""

from __future__ import annotations

from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.container_env import plain_environment, secret_variable_names
from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._container import ContainerMode
from include.blueprint.names import NAME_TEMPLATE

DESCRIPTION = "one Kubernetes pod of the dbt runtime image per dbt node"


def pod_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    """What a pod of the dbt image needs on any Kubernetes cluster (plain Kubernetes and EKS)."""
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    runtime, pods = settings.runtime, settings.kubernetes
    memory = f"{int(runtime.memory_gb * 1024)}Mi"
    return {
        "image": spec.image,
        "namespace": pods.namespace,
        "env": plain_environment(spec),
        "secrets": [
            Secret("env", name, pods.password_secret_name, pods.password_secret_key) for name in secret_variable_names()
        ],
        "service_account_name": pods.service_account_name,
        "image_pull_secrets": [k8s.V1LocalObjectReference(name=pods.image_pull_secret)]
        if pods.image_pull_secret
        else None,
        "container_resources": k8s.V1ResourceRequirements(
            requests={"cpu": str(runtime.cpu), "memory": memory}, limits={"memory": memory}
        ),
        "get_logs": True,
        "on_finish_action": "delete_pod",
    }


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    pods = settings.kubernetes
    return {
        **pod_args(spec),
        "name": NAME_TEMPLATE,
        "random_name_suffix": False,  # the name is already unique per task instance and try
        "kubernetes_conn_id": pods.kubernetes_conn_id,
        "in_cluster": pods.in_cluster,
    }


def _build_operator_class() -> type:
    from cosmos.operators.kubernetes import DbtBuildKubernetesOperator

    return DbtBuildKubernetesOperator


MODE = ContainerMode(ExecutionMode.KUBERNETES, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
