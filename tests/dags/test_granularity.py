"""Every task granularity renders the same dbt nodes, each once, in the manifest's dependency order.

The node -> task map comes from what each DAG will really run: Cosmos's own node -> task mapping for
the node and model granularities, and the layer plan (checked against `dbt ls` in
tests/integration/test_granularity_selection.py) for the layer granularity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from include.blueprint import granularity as grouping
from include.blueprint.modes import build_dbt_dag
from include.blueprint.settings import BlueprintConfigError, load_settings

MODES_WITH_EVERY_GRANULARITY = ["local", "docker", "azure_container_instance", "kubernetes"]


def _settings(granularity: str, **extra: str) -> Any:
    return load_settings({"BLUEPRINT_ENV": "all-modes", "BLUEPRINT__EXECUTION__GRANULARITY": granularity, **extra})


@pytest.fixture(scope="module")
def manifest(jaffle_project: Path) -> dict[str, Any]:
    return json.loads((jaffle_project / "target" / "manifest.json").read_text())


def _buildable(manifest: dict[str, Any]) -> set[str]:
    return {uid for uid, node in manifest["nodes"].items() if node["resource_type"] in ("model", "seed", "snapshot")}


def _tasks_of_nodes(dag: DAG, granularity: str, manifest: dict[str, Any]) -> dict[str, set[str]]:
    """unique_id -> the ids of the tasks that build or test it."""
    if granularity == "project":
        return {uid: {"dbt_build"} for uid in manifest["nodes"]}
    if granularity == "layer":
        return {uid: {layer.task_id} for layer in grouping.plan_layers(manifest) for uid in layer.nodes}
    mapped: dict[str, set[str]] = {}
    for uid, task_or_group in dag.tasks_map.items():  # Cosmos: node -> task, or task group (run + test)
        children = getattr(task_or_group, "children", None)
        mapped[uid] = set(children) if children else {task_or_group.task_id}
    return mapped


def _upstream_closure(dag: DAG, task_id: str) -> set[str]:
    return {task.task_id for task in dag.get_task(task_id).get_flat_relatives(upstream=True)}


@pytest.mark.parametrize("granularity", ["node", "model", "layer", "project"])
@pytest.mark.parametrize("mode", MODES_WITH_EVERY_GRANULARITY)
def test_every_granularity_builds_every_node_after_its_parents(
    manifest: dict[str, Any], mode: str, granularity: str
) -> None:
    dag = build_dbt_dag(f"jaffle_shop_{mode}_{granularity}", mode, _settings(granularity))
    tasks_of = _tasks_of_nodes(dag, granularity, manifest)
    assert _buildable(manifest) <= set(tasks_of), "a model, seed or snapshot has no task"
    assert set().union(*tasks_of.values()) == set(dag.task_ids), "a task builds nothing"
    for uid in _buildable(manifest):
        for parent in manifest["nodes"][uid]["depends_on"].get("nodes", []):
            if parent not in tasks_of:
                continue
            first_of_child = min(tasks_of[uid], key=lambda t: len(_upstream_closure(dag, t)))
            for parent_task in tasks_of[parent] - tasks_of[uid]:
                assert parent_task in _upstream_closure(dag, first_of_child), (uid, parent)


def test_coarser_granularities_have_fewer_tasks() -> None:
    counts = {g: len(build_dbt_dag("x", "local", _settings(g)).task_ids) for g in ("node", "model", "layer", "project")}
    assert counts == {"node": 16, "model": 11, "layer": 3, "project": 1}


def test_layer_tasks_select_their_folder_with_cautious_indirect_selection() -> None:
    dag = build_dbt_dag("x", "local", _settings("layer"))
    staging = dag.get_task("dbt_build_staging")
    assert (staging.select, staging.indirect_selection) == (["path:models/staging"], "cautious")
    assert dag.get_task("dbt_build_marts").upstream_task_ids == {"dbt_build_staging"}


def _node(uid: str, path: str, kind: str = "model", parents: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    return uid, {"resource_type": kind, "original_file_path": path, "name": uid.split(".")[-1],
                 "depends_on": {"nodes": list(parents)}}  # fmt: skip


def test_a_test_spanning_layers_runs_once_in_the_last_of_them() -> None:
    nodes = dict([
        _node("seed.p.raw", "seeds/raw.csv", "seed"),
        _node("model.p.stg", "models/staging/stg.sql", parents=("seed.p.raw",)),
        _node("model.p.mart", "models/marts/mart.sql", parents=("model.p.stg",)),
        # declared next to the staging model, but it also reads the mart
        _node("test.p.rel", "models/staging/_staging.yml", "test", ("model.p.stg", "model.p.mart")),
        _node("test.p.src", "models/staging/_sources.yml", "test"),
        _node("test.p.singular", "tests/mart_is_sane.sql", "test", ("model.p.mart",)),
        _node("test.p.src_only", "tests/source_is_fresh.sql", "test"),
    ])  # fmt: skip
    seeds, staging, marts = grouping.plan_layers({"nodes": nodes})
    task_ids = [layer.task_id for layer in (seeds, staging, marts)]
    assert task_ids == ["dbt_build_seeds", "dbt_build_staging", "dbt_build_marts"]
    assert "test.p.rel" in marts.nodes
    assert marts.select == ["path:models/marts", "rel"]
    assert staging.exclude == ["rel"]
    assert "test.p.src" in staging.nodes  # on sources only: its own folder's layer
    assert "test.p.singular" in marts.nodes  # selected through its parent (cautious)
    assert "test.p.src_only" in seeds.nodes
    assert "src_only" in seeds.select
    assert staging.upstream == {"dbt_build_seeds"}
    assert marts.upstream == {"dbt_build_staging"}


def test_folders_that_depend_on_each_other_are_refused_with_the_way_out() -> None:
    nodes = dict([
        _node("model.p.a1", "models/a/a1.sql"),
        _node("model.p.b1", "models/b/b1.sql", parents=("model.p.a1",)),
        _node("model.p.a2", "models/a/a2.sql", parents=("model.p.b1",)),
    ])  # fmt: skip
    with pytest.raises(BlueprintConfigError, match=r"cycle.*granularity model"):
        grouping.plan_layers({"nodes": nodes})


def test_one_granularity_for_all_applies_where_it_can() -> None:
    execution = _settings("layer").execution
    assert execution.granularity_of("azure_container_instance") == "layer"
    assert execution.granularity_of("watcher") == "node"  # per-node by design
    assert execution.granularity_of("virtualenv") == "node"  # has no single-task operator


def test_an_impossible_granularity_for_a_mode_is_refused_at_parse_time() -> None:
    with pytest.raises(BlueprintConfigError) as error:
        load_settings({"BLUEPRINT__EXECUTION__GRANULARITY__WATCHER": "layer"})
    assert "execution.granularity.watcher: 'layer' is not possible here; use node" in str(error.value)
    with pytest.raises(BlueprintConfigError, match=r"granularity\.local: Input should be 'node', 'model'.*'rows'"):
        load_settings({"BLUEPRINT__EXECUTION__GRANULARITY__LOCAL": "rows"})


def test_a_packages_models_are_one_layer_selected_by_package() -> None:
    nodes = dict([
        _node("seed.p.raw", "seeds/raw.csv", "seed"),
        _node("model.utils.calendar", "models/calendar.sql"),  # a package's model, path relative to the package
        _node("model.p.stg", "models/staging/stg.sql", parents=("seed.p.raw", "model.utils.calendar")),
    ])  # fmt: skip
    for uid, node in nodes.items():
        node["package_name"] = uid.split(".")[1]
    layers = {
        layer.task_id: layer for layer in grouping.plan_layers({"metadata": {"project_name": "p"}, "nodes": nodes})
    }
    assert layers["dbt_build_utils"].select == ["package:utils"]
    assert layers["dbt_build_utils"].nodes == {"model.utils.calendar"}
    assert layers["dbt_build_staging"].upstream == {"dbt_build_seeds", "dbt_build_utils"}
