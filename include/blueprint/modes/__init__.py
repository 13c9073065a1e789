"""One module per Cosmos execution mode, chosen through an explicit mapping.

Each module has `build(dag_id, settings)`, returning the per-node DAG, and, where the runtime can
run the whole project as one task, `build_operator(settings)`, returning the `dbt build` operator
class and its arguments for the single-task baseline. Modules import their provider packages
inside these functions, so a deployment that enables only the local mode parses without Docker,
Kubernetes or cloud provider packages installed.
"""

from __future__ import annotations

from types import ModuleType

from airflow.sdk import DAG

from include.blueprint.modes import (
    airflow_async,
    aws_ecs,
    aws_eks,
    azure_container_instance,
    docker,
    gcp_cloud_run_job,
    kubernetes,
    local,
    virtualenv,
    watcher,
)
from include.blueprint.settings import BlueprintConfigError, Settings, settings

MODES: dict[str, ModuleType] = {
    "local": local,
    "virtualenv": virtualenv,
    "watcher": watcher,
    "airflow_async": airflow_async,
    "docker": docker,
    "kubernetes": kubernetes,
    "azure_container_instance": azure_container_instance,
    "aws_ecs": aws_ecs,
    "aws_eks": aws_eks,
    "gcp_cloud_run_job": gcp_cloud_run_job,
}
SINGLE_TASK_MODES = sorted(name for name, module in MODES.items() if hasattr(module, "build_operator"))


def mode_module(mode: str) -> ModuleType:
    try:
        return MODES[mode]
    except KeyError:
        raise BlueprintConfigError(f"unknown execution mode {mode!r}; supported: {', '.join(MODES)}") from None


def build_dbt_dag(dag_id: str, mode: str, config: Settings | None = None) -> DAG | None:
    """The dbt project run in `mode`, one task per node, model, layer or the whole project as
    execution.granularity says; None when the mode is disabled."""
    module = mode_module(mode)
    config = config or settings()
    if not config.mode_enabled(mode):
        return None
    granularity = config.execution.granularity_of(mode)
    if granularity in ("layer", "project"):
        return _grouped_dag(dag_id, mode, config, granularity)
    return module.build(dag_id, config)


def build_single_task_dag(dag_id: str, mode: str, config: Settings | None = None) -> DAG | None:
    """The whole project as one `dbt build` task, run in `mode`; None when the mode is disabled."""
    module = mode_module(mode)
    if not hasattr(module, "build_operator"):
        raise BlueprintConfigError(
            f"mode {mode!r} has no single-task variant; modes with one: {', '.join(SINGLE_TASK_MODES)}"
        )
    config = config or settings()
    if not config.mode_enabled(mode):
        return None
    return _grouped_dag(dag_id, mode, config, "project")


def _grouped_dag(dag_id: str, mode: str, config: Settings, granularity: str) -> DAG:
    """`dbt build` tasks that each run a layer, or one that runs the whole project."""
    from include.blueprint import cosmos_configs
    from include.blueprint import granularity as grouping

    # A stale manifest means the deployed code is inconsistent, even where no task reads it.
    manifest = cosmos_configs.project_config(config).manifest_path
    layers = grouping.plan_layers(grouping.read_manifest(manifest)) if granularity == "layer" else None
    operator_class, arguments = MODES[mode].build_operator(config)
    what = "one `dbt build` task per layer" if layers else "the whole project in one `dbt build` task"
    description = f"jaffle_shop: {what} ({mode})"
    return grouping.build_grouped_dag(
        cosmos_configs.dag_arguments(dag_id, config, description), operator_class, arguments, layers
    )
