"""Airflow assets of dbt models, with URIs that are the same in every environment.

Cosmos names a model's asset after the warehouse's host, port and schema, so a DAG scheduled on
a dev asset never fires in prod. Ours name the registered project and the model:

    dbt://<project>/<model>              e.g. dbt://jaffle_shop/customers
    dbt://<project>/<package>.<model>    for a model of an installed dbt package

The task that finishes a model (its tests, where they run in the model's task or group) declares
the asset as an outlet, so Airflow records an asset event when the model has been rebuilt and
tested, and DAGs declared with `schedule: {assets: [<project>.<model>]}` run after it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from include.blueprint.declarations import AssetSchedule

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from include.blueprint.dag_specs import DagSpec

SCHEME = "dbt"
BUILT_TYPES = ("model", "seed", "snapshot")


def model_reference(project: str, package: str | None, name: str, root_package: str) -> str:
    """<project>.<model>, or <project>.<package>.<model> for a package's model."""
    return f"{project}.{name}" if package in (None, root_package) else f"{project}.{package}.{name}"


def asset(reference: str) -> Asset:
    from include.blueprint.render_shortcuts import dbt_asset

    project, _, model = reference.partition(".")
    return dbt_asset(reference, f"{SCHEME}://{project}/{model}", "dbt")


def schedule_of(spec: DagSpec) -> Any:
    """A cron or preset string, None, or the assets every one of which must have been rebuilt."""
    schedule = spec.schedule
    if isinstance(schedule, AssetSchedule):
        return [asset(reference) for reference in schedule.assets]
    return schedule


def set_outlets(task: Any, references: Iterable[str]) -> None:
    outlets = [asset(reference) for reference in sorted(references)]
    if outlets:
        task.outlets = [*task.outlets, *outlets]


@functools.cache
def root_package(project_dir: Path) -> str:
    """The dbt project's own package name (models of installed packages carry theirs)."""
    return str((yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}).get("name", ""))


def is_built(node: Any) -> bool:
    """A Cosmos DbtNode that leaves a relation behind (ephemeral models do not)."""
    return node.resource_type.value in BUILT_TYPES and node.config.get("materialized") != "ephemeral"


def reference_of(spec: DagSpec, node: Any) -> str:
    """The reference of a Cosmos DbtNode of the spec's project."""
    return model_reference(spec.project_name, node.package_name, node.name, root_package(spec.project_dir))


def finishing_tasks(task_or_group: Any) -> list[Any]:
    """The tasks after which a node is done: the task itself, or a group's last tasks (its tests)."""
    if hasattr(task_or_group, "get_leaves"):
        return list(task_or_group.get_leaves())
    return [task_or_group]


def attach_to_cosmos_dag(dag: Any, spec: DagSpec) -> None:
    """Each built node's asset on the task (or the group's last tasks) that finishes it."""
    for unique_id, node in dag.dbt_graph.filtered_nodes.items():
        if is_built(node) and unique_id in dag.tasks_map:
            for task in finishing_tasks(dag.tasks_map[unique_id]):
                set_outlets(task, [reference_of(spec, node)])


def task_references(task: Any) -> set[str]:
    """The models, seeds and snapshots a task finishes, read from its dbt assets."""
    return {outlet.name for outlet in task.outlets if getattr(outlet, "group", None) == "dbt"}


def built_references(dag: Any) -> set[str]:
    return set().union(*(task_references(task) for task in dag.tasks))
