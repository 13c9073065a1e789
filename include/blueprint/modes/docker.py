"""ExecutionMode.DOCKER: each dbt node runs in a container of the dbt runtime image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cosmos.constants import ExecutionMode

from include.blueprint.container_env import InjectSecrets, plain_environment
from include.blueprint.dag_specs import DagSpec
from include.blueprint.modes._container import ContainerMode
from include.blueprint.names import NAME_TEMPLATE
from include.blueprint.ownership import MarkOwnership

DESCRIPTION = "one container of the dbt runtime image per dbt node (Docker)"


@dataclass(frozen=True)
class PrepareContainer:
    """Docker's `pre_execute` hook: the secrets, and the task instance as labels (for the sweeper)."""

    inject_secrets: InjectSecrets
    mark_ownership: MarkOwnership

    def __call__(self, context: dict[str, Any]) -> None:
        self.inject_secrets(context)
        self.mark_ownership(context)


def operator_args(spec: DagSpec) -> dict[str, Any]:
    settings = spec.settings
    runtime = settings.runtime
    return {
        "image": spec.image,
        "env": plain_environment(spec),
        # DockerOperator keeps `private_environment` (never rendered, never logged) in this attribute.
        "pre_execute": PrepareContainer(
            InjectSecrets(settings.warehouse.conn_id, "_private_environment"),
            MarkOwnership(settings.sweeper.deployment, "labels"),
        ),
        "container_name": NAME_TEMPLATE,
        "docker_conn_id": runtime.registry_conn_id,
        "docker_url": settings.docker.docker_url,
        "network_mode": settings.docker.network_mode,
        "cpus": runtime.cpu,
        "mem_limit": f"{int(runtime.memory_gb * 1024)}m",
        "auto_remove": "success",
        "mount_tmp_dir": False,
        "working_dir": runtime.project_dir,
    }


def _build_operator_class() -> type:
    from cosmos.operators.docker import DbtBuildDockerOperator

    return DbtBuildDockerOperator


MODE = ContainerMode(ExecutionMode.DOCKER, DESCRIPTION, operator_args, _build_operator_class)
build, build_operator = MODE.build, MODE.build_operator
