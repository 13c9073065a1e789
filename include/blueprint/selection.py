"""Which dbt nodes a DAG builds, resolved from the manifest with Cosmos's own selector engine.

Cosmos resolves `select` / `exclude` and YAML selectors (selectors.yml, stored in the manifest)
when it renders a per-node DAG; the layer and project DAGs, and the checks across DAGs, ask the
same engine here, so every DAG agrees with Cosmos on what a selection means.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.blueprint.settings import BlueprintConfigError

if TYPE_CHECKING:
    from include.blueprint.dag_specs import DagSpec

BUILT_NODE_TYPES = ("model", "seed", "snapshot")


def selected_nodes(spec: DagSpec) -> dict[str, Any]:
    """unique_id -> Cosmos DbtNode of every node the spec's selection picks."""
    select, exclude = select_and_exclude(spec)
    return _nodes(_version(spec.project.manifest_path), spec.project_dir, spec.project_name, select, exclude)


def select_and_exclude(spec: DagSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The spec's selection as select/exclude lists: a YAML selector is translated by Cosmos's own
    parser from the manifest. (Cosmos's `RenderConfig.selector` would cache the parse in an Airflow
    Variable, writing to the metadata database at every DAG parse.)"""
    declaration = spec.declaration
    if declaration.selector is None:
        return tuple(declaration.select), tuple(declaration.exclude)
    parsed = _parsed_selectors(_version(spec.project.manifest_path)).get(declaration.selector)
    if parsed is None:
        raise BlueprintConfigError(
            f"selector {declaration.selector!r} is not in {spec.project_dir.name}'s selectors.yml "
            "(or `make manifest` has not run since it was added)"
        )
    return tuple(parsed.get("select") or ()), tuple(parsed.get("exclude") or ())


@functools.cache
def _parsed_selectors(manifest_version: tuple[Path, int]) -> dict[str, dict[str, Any]]:
    from cosmos.dbt.selector import YamlSelectors
    from cosmos.exceptions import CosmosValueError

    definitions = json.loads(manifest_version[0].read_text()).get("selectors") or {}
    try:
        return YamlSelectors.parse(definitions, lax_parsing_enabled=False).parsed if definitions else {}
    except CosmosValueError as error:
        raise BlueprintConfigError(f"selectors.yml cannot be used: {error}") from None


def every_node(spec: DagSpec) -> dict[str, Any]:
    """unique_id -> Cosmos DbtNode of every node of the spec's project, selected or not."""
    return _nodes(_version(spec.project.manifest_path), spec.project_dir, spec.project_name, (), ())


def _version(manifest: Path) -> tuple[Path, int]:
    """The manifest and its modification time: a rewritten manifest is resolved anew."""
    return manifest, manifest.stat().st_mtime_ns


@functools.cache
def _nodes(
    manifest_version: tuple[Path, int], project_dir: Path, name: str, select: tuple[str, ...], exclude: tuple[str, ...]
) -> dict[str, Any]:
    from cosmos import ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import LoadMode
    from cosmos.dbt.graph import CosmosLoadDbtException, DbtGraph

    manifest = manifest_version[0]
    project = ProjectConfig(dbt_project_path=project_dir, manifest_path=manifest, project_name=name)
    project.manifest_path = manifest  # a plain path: see cosmos_configs.project_config
    render = RenderConfig(load_method=LoadMode.DBT_MANIFEST, select=list(select), exclude=list(exclude))
    graph = DbtGraph(
        project=project, render_config=render, execution_config=ExecutionConfig(dbt_project_path=project_dir)
    )
    try:
        graph.load(method=LoadMode.DBT_MANIFEST)
    except CosmosLoadDbtException as error:
        raise BlueprintConfigError(str(error)) from None
    return dict(graph.filtered_nodes)


def drop_tests_outside_the_selection(dag: Any) -> None:
    """Remove the test tasks of a Cosmos DAG that read a model the selection leaves out.

    dbt's cautious indirect selection runs a test only when all its parents are selected; Cosmos
    renders every test of a selected model, so a relationships test pointing outside the
    selection would run against a relation this DAG does not build (or has not built yet)."""
    selected = dag.dbt_graph.filtered_nodes
    for unique_id, node in list(selected.items()):
        parents = [parent for parent in node.depends_on if parent.split(".")[0] in BUILT_NODE_TYPES]
        if node.resource_type.value == "test" and any(parent not in selected for parent in parents):
            task_or_group = dag.tasks_map.pop(unique_id, None)
            tasks = list(task_or_group.children.values()) if hasattr(task_or_group, "children") else [task_or_group]
            for task in filter(None, tasks):
                _remove_task(dag, task)


def _remove_task(dag: Any, task: Any) -> None:
    for upstream_id in task.upstream_task_ids:
        dag.task_dict[upstream_id].downstream_task_ids.discard(task.task_id)
    for downstream_id in task.downstream_task_ids:
        dag.task_dict[downstream_id].upstream_task_ids.discard(task.task_id)
    task.task_group.children.pop(task.node_id, None)
    del dag.task_dict[task.task_id]
