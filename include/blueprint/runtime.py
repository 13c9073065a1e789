"""The runtime contract the container modes share, and what each runtime adds.

Cosmos's Azure Container Instances guide shares one `aci_params` dict between its single-task
DAG and its Cosmos DAG. This is that idea, typed and generalised: `ContainerRuntime` is what
every container runtime needs (image, in-container project path, naming, resources, environment),
and each runtime section adds only its own infrastructure. The dbt image reads the POSTGRES_*
variables (dbt/jaffle_shop/profiles.yml); this module is the one place that maps them to the
Airflow connection.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"

# The dbt image's environment contract: variable -> field of the Airflow Postgres connection.
CONNECTION_VARIABLES = {
    "POSTGRES_HOST": "host",
    "POSTGRES_PORT": "port",
    "POSTGRES_USER": "login",
    "POSTGRES_DATABASE": "schema",  # Airflow's Postgres connection calls the database "schema"
}
SCHEMA_VARIABLE = "POSTGRES_SCHEMA"
# Secret variables and the connection field each comes from. They reach containers only through
# the runtime's secret mechanism, never as a plain environment variable or a template field.
SECRET_VARIABLES = {"POSTGRES_PASSWORD": "password"}


class Section(BaseModel):
    """A settings section: unknown keys are errors, and values never change once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_Section = Section


class ContainerRuntime(_Section):
    """What every container runtime shares."""

    image: str | None = Field(default=None, min_length=1)
    registry_conn_id: str | None = None
    project_dir: str = Field(pattern=r"^/")
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")
    cpu: float = Field(gt=0, le=16)
    memory_gb: float = Field(gt=0, le=64)
    environment: dict[str, str] = Field(default_factory=dict)

    @field_validator("environment")
    @classmethod
    def _plain_variables_only(cls, environment: dict[str, str]) -> dict[str, str]:
        import re

        problems = [name for name in environment if not re.match(ENV_NAME, name)]
        if problems:
            raise ValueError(f"not valid environment variable names: {', '.join(problems)}")
        secret = sorted(set(environment) & set(SECRET_VARIABLES))
        if secret:
            raise ValueError(
                f"{', '.join(secret)} is a secret: it is delivered by each runtime's secret mechanism "
                "from the warehouse connection, never as a plain variable"
            )
        return environment


class DockerSettings(_Section):
    docker_url: str = Field(min_length=1)
    # "bridge" on a laptop; "host" where the engine runs without a bridge (e.g. CI).
    network_mode: str = Field(min_length=1)


class AzureContainerInstanceSettings(_Section):
    ci_conn_id: str = Field(min_length=1)
    resource_group: str | None = Field(default=None, pattern=r"^[-\w._()]{1,90}$")
    region: str | None = Field(default=None, pattern=r"^[a-z0-9]+$")
    os_type: Literal["Linux"] = "Linux"


class KubernetesSettings(_Section):
    """Pod settings, shared by the kubernetes and aws_eks modes."""

    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    kubernetes_conn_id: str | None = None
    in_cluster: bool = True
    service_account_name: str | None = None
    image_pull_secret: str | None = None
    # The Kubernetes Secret holding the database password (created by your platform, not here).
    password_secret_name: str = Field(pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    password_secret_key: str = Field(min_length=1)


class AwsEcsSettings(_Section):
    aws_conn_id: str = Field(min_length=1)
    region: str | None = None
    cluster: str | None = Field(default=None, min_length=1)
    # The task definition maps POSTGRES_PASSWORD to a Secrets Manager or SSM secret.
    task_definition: str | None = Field(default=None, min_length=1)
    container_name: str = Field(min_length=1)
    launch_type: Literal["FARGATE", "EC2"] = "FARGATE"
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False


class AwsEksSettings(_Section):
    aws_conn_id: str = Field(min_length=1)
    cluster_name: str | None = Field(default=None, min_length=1)
    region: str | None = None


class GcpCloudRunJobSettings(_Section):
    gcp_conn_id: str = Field(min_length=1)
    project_id: str | None = Field(default=None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    region: str | None = None
    # The Cloud Run job (image, POSTGRES_PASSWORD from Secret Manager) is defined by your platform.
    job_name: str | None = Field(default=None, pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


# Settings each mode needs beyond the defaults, checked when the mode is enabled.
MODE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "local": (),
    "virtualenv": (),
    "watcher": (),
    "airflow_async": (),
    "docker": ("runtime.image",),
    "kubernetes": ("runtime.image",),
    "azure_container_instance": (
        "runtime.image",
        "azure_container_instance.resource_group",
        "azure_container_instance.region",
    ),
    "aws_ecs": ("aws_ecs.cluster", "aws_ecs.task_definition", "aws_ecs.subnets"),
    "aws_eks": ("runtime.image", "aws_eks.cluster_name", "aws_eks.region"),
    "gcp_cloud_run_job": ("gcp_cloud_run_job.project_id", "gcp_cloud_run_job.region", "gcp_cloud_run_job.job_name"),
}
# The provider packages each mode's operators import (include/blueprint/modes/), which the image
# a deployment runs must install: requirements.txt follows the modes the overlays enable
# (tools/deploy_requirements.py), and the preflight checks it.
MODE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "docker": ("apache-airflow-providers-docker",),
    "kubernetes": ("apache-airflow-providers-cncf-kubernetes",),
    "azure_container_instance": ("apache-airflow-providers-microsoft-azure",),
    "aws_ecs": ("apache-airflow-providers-amazon",),
    "aws_eks": ("apache-airflow-providers-amazon", "apache-airflow-providers-cncf-kubernetes"),
    "gcp_cloud_run_job": ("apache-airflow-providers-google",),
}
ModeName = Literal[
    "local",
    "virtualenv",
    "watcher",
    "airflow_async",
    "docker",
    "kubernetes",
    "azure_container_instance",
    "aws_ecs",
    "aws_eks",
    "gcp_cloud_run_job",
]


# How many dbt nodes one Airflow task runs: each dbt node; a model with its tests (dbt build per
# model); each layer (one folder of models, or the seeds); the whole project. Coarser tasks pay the
# runtime's start-up (a container's cold start, dbt's own start) fewer times.
Granularity = Literal["node", "model", "layer", "project"]
# Which granularities each mode can build: layer and project need a single-task `dbt build`
# operator; the watcher and airflow_async modes are per-node by design.
MODE_GRANULARITIES: dict[str, tuple[str, ...]] = {
    "watcher": ("node",),
    "airflow_async": ("node",),
    "virtualenv": ("node", "model"),
}
ALL_GRANULARITIES: tuple[str, ...] = ("node", "model", "layer", "project")


def granularities_of(mode: str) -> tuple[str, ...]:
    return MODE_GRANULARITIES.get(mode, ALL_GRANULARITIES)
