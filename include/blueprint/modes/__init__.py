"""One module per Cosmos execution mode, chosen through an explicit mapping.

Each module has `build(spec)`, returning the per-node (or per-model) DAG of a DAG spec, and, where
the runtime can run many nodes in one task, `build_operator(spec)`, returning the `dbt build`
operator class and its arguments for layer and project tasks. Modules import their provider packages
inside these functions, so a deployment that enables only the local mode parses without Docker,
Kubernetes or cloud provider packages installed.
"""

from __future__ import annotations

from types import ModuleType

from airflow.sdk import DAG

from include.blueprint.dag_specs import DagSpec, default_spec
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


def build_dag(spec: DagSpec) -> DAG:
    """The DAG of one spec: Cosmos's per-node or per-model DAG, or `dbt build` tasks per layer or
    for the whole project, as the spec's granularity says."""
    from include.blueprint.render_shortcuts import paused_gc

    with paused_gc():
        return _build_dag(spec)


def _build_dag(spec: DagSpec) -> DAG:
    from include.blueprint import alerts, artifacts, assets, docs_task, freshness, lateness, selection

    module = mode_module(spec.mode)
    if spec.granularity in ("layer", "project"):
        dag = _grouped_dag(spec)
    else:
        dag = module.build(spec)
        if not spec.selects_everything:
            selection.drop_tests_outside_the_selection(dag)
        assets.attach_to_cosmos_dag(dag, spec)
    if spec.declaration.source_freshness:
        freshness.add_freshness_task(dag, spec)
    if spec.docs_after_build:
        docs_task.add_docs_task(dag, spec)
    alerts.attach(dag, spec.alerts)
    lateness.attach(dag, spec.alerts)
    # After the alerts' callback: the summary is the last thing a dbt task logs.
    artifacts.attach(dag, spec.settings.artifacts)
    return dag


def build_dbt_dag(dag_id: str, mode: str, config: Settings | None = None, project: str = "jaffle_shop") -> DAG | None:
    """`project`'s DAG in `mode`, building every node; None when the mode is disabled. For the
    repository's tests and benchmarks: deployments declare their DAGs (see pipelines.py)."""
    mode_module(mode)
    config = config or settings()
    if not config.mode_enabled(mode):
        return None
    return build_dag(default_spec(config, dag_id, mode, project=project))


def build_single_task_dag(
    dag_id: str, mode: str, config: Settings | None = None, project: str = "jaffle_shop"
) -> DAG | None:
    """The whole project as one `dbt build` task, run in `mode`; None when the mode is disabled."""
    module = mode_module(mode)
    if not hasattr(module, "build_operator"):
        raise BlueprintConfigError(
            f"mode {mode!r} has no single-task variant; modes with one: {', '.join(SINGLE_TASK_MODES)}"
        )
    config = config or settings()
    if not config.mode_enabled(mode):
        return None
    return build_dag(default_spec(config, dag_id, mode, granularity="project", project=project))


def _grouped_dag(spec: DagSpec) -> DAG:
    """`dbt build` tasks that each run a layer, or one that runs the whole project."""
    from include.blueprint import assets, cosmos_configs
    from include.blueprint import granularity as grouping
    from include.blueprint.selection import selected_nodes

    # A stale manifest means the deployed code is inconsistent, even where no task reads it.
    manifest_path = cosmos_configs.project_config(spec).manifest_path
    operator_class, arguments = MODES[spec.mode].build_operator(spec)
    # Our assets (assets.py) replace Cosmos's, whose URIs carry the warehouse's host and port.
    arguments = {**arguments, **cosmos_configs.run_parameters(), "emit_datasets": False}
    if spec.granularity == "project":
        if not spec.selects_everything:
            # The nodes Cosmos selected, by name, as the other granularities build them; a test
            # runs only with all its parents (cautious), as in layer tasks.
            arguments.update(
                {"select": grouping.selected_names(selected_nodes(spec)), "indirect_selection": "cautious"}
            )
        layers = None
    else:
        only = None if spec.selects_everything else set(selected_nodes(spec))
        layers = grouping.plan_layers(grouping.read_manifest(manifest_path), only)
    what = "one `dbt build` task per layer" if layers else "the selection in one `dbt build` task"
    dag = grouping.build_grouped_dag(
        cosmos_configs.dag_arguments(spec, f"{what} ({spec.mode})"), operator_class, arguments, layers
    )
    built = {
        uid: assets.reference_of(spec, node) for uid, node in selected_nodes(spec).items() if assets.is_built(node)
    }
    for layer in layers or [None]:
        task = dag.get_task(layer.task_id if layer else "dbt_build")
        assets.set_outlets(task, [built[uid] for uid in (layer.nodes if layer else built) if uid in built])
    return dag
