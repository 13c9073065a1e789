"""ExecutionMode.AZURE_CONTAINER_INSTANCE: each dbt node runs in a container group that Airflow
creates in Azure Container Instances and deletes afterwards (Cosmos's ACI guide, generalised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.container_env import InjectSecrets, plain_environment, secret_variable_names
from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._aci_logs import follow_whole_log
from include.blueprint.modes._container import ContainerMode
from include.blueprint.names import NAME_TEMPLATE
from include.blueprint.ownership import MarkOwnership

DESCRIPTION = "one Azure Container Instances container group per dbt node"


@dataclass(frozen=True)
class PrepareContainerGroup:
    """ACI's `pre_execute` hook: the secrets as secure values, the task instance as tags (for the
    sweeper), and a log follower that loses no line (the group is deleted when the task ends, so
    its log lives only in the Airflow task log)."""

    inject_secrets: InjectSecrets
    mark_ownership: MarkOwnership

    def __call__(self, context: dict[str, Any]) -> None:
        self.inject_secrets(context)
        self.mark_ownership(context)
        follow_whole_log(context["task"])


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    runtime, aci = settings.runtime, settings.azure_container_instance
    return {
        "ci_conn_id": aci.ci_conn_id,
        "registry_conn_id": runtime.registry_conn_id,
        "resource_group": aci.resource_group,
        "region": aci.region,
        "image": spec.image,
        "name": NAME_TEMPLATE,
        "env": plain_environment(spec),
        # Only the names travel in the DAG; the values are added at run time as secure values.
        "secured_variables": secret_variable_names(),
        "pre_execute": PrepareContainerGroup(
            InjectSecrets(settings.warehouse.conn_id, "environment_variables"),
            MarkOwnership(settings.sweeper.deployment, "tags"),
        ),
        "cpu": runtime.cpu,
        "memory_in_gb": runtime.memory_gb,
        "os_type": aci.os_type,
        "restart_policy": "Never",
        # A failed group is deleted too: its logs are already in the Airflow task log.
        "remove_on_error": True,
        "fail_if_exists": True,
        # The deferred path (e.g. with [operators] default_deferrable on) never reads the container's
        # log, which is gone with the group: poll in the worker.
        "deferrable": False,
    }


def _build_operator_class() -> type:
    from cosmos.operators.azure_container_instance import DbtBuildAzureContainerInstanceOperator

    return DbtBuildAzureContainerInstanceOperator


MODE = ContainerMode(ExecutionMode.AZURE_CONTAINER_INSTANCE, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
