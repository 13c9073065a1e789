"""Coarse task granularities: one `dbt build` task per layer, or one for the whole project.

A layer is a folder of models (models/staging, models/marts) or a seed or snapshot folder. Layer
tasks select their folder by path with cautious indirect selection, so a test runs with its
parents; a test whose parents span layers is selected by name in the last of those layers, which
is where dbt can first run it. Every node of the manifest lands in exactly one task, and a layer
task waits for every layer it reads from.
"""

from __future__ import annotations

import graphlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.sdk import DAG

from include.blueprint.settings import BlueprintConfigError

_LAYERED_TYPES = ("model", "seed", "snapshot")
_TESTED_TYPES = ("test",)


@dataclass
class Layer:
    folder: str  # e.g. models/staging
    task_id: str
    nodes: set[str] = field(default_factory=set)
    named_tests: set[str] = field(default_factory=set)  # tests selected by name: parents span layers
    excluded_tests: set[str] = field(default_factory=set)  # tests in this folder that run elsewhere
    upstream: set[str] = field(default_factory=set)  # task ids
    # A DAG that builds a selection names the folder's selected nodes instead of its path.
    selected_names: set[str] | None = None

    @property
    def select(self) -> list[str]:
        # A package's nodes are one layer (their paths are the package's, not the project's).
        whole = self.folder if self.folder.startswith(PACKAGE_LAYER) else f"path:{self.folder}"
        chosen = [whole] if self.selected_names is None else sorted(self.selected_names)
        return [*chosen, *sorted(self.named_tests)]

    @property
    def exclude(self) -> list[str]:
        return sorted(self.excluded_tests)


PACKAGE_LAYER = "package:"


def _folder_of(node: dict[str, Any], root: str | None = None) -> str:
    package = node.get("package_name")
    if root and package and package != root:
        return PACKAGE_LAYER + package
    parts = PurePosixPath(node["original_file_path"]).parts
    # Models are grouped one folder deep (models/staging); seeds and snapshots by their root folder.
    depth = 2 if node["resource_type"] == "model" and len(parts) > 2 else 1
    return "/".join(parts[:depth])


def _task_ids(folders: list[str]) -> dict[str, str]:
    short = {folder: "dbt_build_" + folder.rsplit("/", 1)[-1].replace(PACKAGE_LAYER, "") for folder in folders}
    if len(set(short.values())) == len(short):
        return short
    return {folder: "dbt_build_" + folder.replace("/", "__").replace(":", "_") for folder in folders}


def plan_layers(manifest: dict[str, Any], only: set[str] | None = None) -> list[Layer]:
    """The layers of a manifest in dependency order, each with the nodes its task builds; with
    `only`, just those nodes (a DAG's selection) and the tests whose parents they all are."""
    nodes = manifest["nodes"]
    root = manifest.get("metadata", {}).get("project_name")
    folder_of = {
        uid: _folder_of(node, root)
        for uid, node in nodes.items()
        if node["resource_type"] in _LAYERED_TYPES and (only is None or uid in only)
    }
    folders = sorted(set(folder_of.values()))
    if not folders:
        raise BlueprintConfigError("execution.granularity=layer: the manifest has no models, seeds or snapshots")
    task_ids = _task_ids(folders)
    reads_from: dict[str, set[str]] = defaultdict(set)
    for uid, folder in folder_of.items():
        for parent in nodes[uid]["depends_on"].get("nodes", []):
            if parent in folder_of and folder_of[parent] != folder:
                reads_from[folder].add(folder_of[parent])
    try:
        order = list(graphlib.TopologicalSorter({f: reads_from[f] for f in folders}).static_order())
    except graphlib.CycleError as error:
        cycle = " -> ".join(error.args[1])
        raise BlueprintConfigError(
            f"execution.granularity=layer: folders depend on each other in a cycle ({cycle}); "
            "move the models so that folders depend one way, or use granularity model"
        ) from None
    layers = {f: Layer(f, task_ids[f], upstream={task_ids[u] for u in reads_from[f]}) for f in order}
    for uid, folder in folder_of.items():
        layers[folder].nodes.add(uid)
        if only is not None:
            # by fully qualified name: a bare name may also match a package's node
            fqn = "fqn:" + ".".join(nodes[uid].get("fqn") or [nodes[uid]["name"]])
            layers[folder].selected_names = (layers[folder].selected_names or set()) | {fqn}
    for uid, node in nodes.items():
        if node["resource_type"] in _TESTED_TYPES and _tests_selection(node, folder_of, only):
            _place_test(uid, node, folder_of, layers, order, root)
    return [layers[f] for f in order]


def _tests_selection(node: dict[str, Any], folder_of: dict[str, str], only: set[str] | None) -> bool:
    """Every test of the project, or, for a selection, a test whose layered parents are all in it."""
    if only is None:
        return True
    parents = [parent for parent in node["depends_on"].get("nodes", []) if parent.split(".")[0] in _LAYERED_TYPES]
    return bool(parents) and all(parent in folder_of for parent in parents)


def _place_test(
    uid: str,
    node: dict[str, Any],
    folder_of: dict[str, str],
    layers: dict[str, Layer],
    order: list[str],
    root: str | None,
) -> None:
    """A test runs in the last layer of its parents (or its own folder's layer, or the first)."""
    parents = node["depends_on"].get("nodes", [])
    parent_folders = {folder_of[p] for p in parents if p in folder_of}
    own = _folder_of({**node, "resource_type": "model"}, root)
    fallback = own if own in layers else order[0]
    last = max(parent_folders, key=order.index) if parent_folders else fallback
    layers[last].nodes.add(uid)
    by_path = layers[last].selected_names is None
    selected_by_path = own == last and by_path
    selected_by_parents = bool(parents) and all(folder_of.get(p) == last for p in parents)  # cautious
    if not (selected_by_path or selected_by_parents):
        layers[last].named_tests.add(node["name"])
    if by_path and own in layers and own != last:  # its folder's path would select it before its parents exist
        layers[own].excluded_tests.add(node["name"])


def selected_names(nodes: dict[str, Any]) -> list[str]:
    """`fqn:` selectors of the models, seeds and snapshots among Cosmos DbtNodes."""
    return sorted(
        "fqn:" + ".".join(node.fqn or [node.name])
        for node in nodes.values()
        if node.resource_type.value in _LAYERED_TYPES
    )


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def build_grouped_dag(
    dag_arguments: dict[str, Any], operator_class: type, arguments: dict[str, Any], layers: list[Layer] | None
) -> DAG:
    """A DAG of `dbt build` tasks: one per layer in `layers`, or one for the project when None."""
    with DAG(**dag_arguments) as dag:
        if layers is None:
            operator_class(task_id="dbt_build", **arguments)
            return dag
        tasks = {
            layer.task_id: operator_class(
                task_id=layer.task_id,
                select=layer.select,
                exclude=layer.exclude,
                indirect_selection="cautious",
                **arguments,
            )
            for layer in layers
        }
        for layer in layers:
            for upstream in sorted(layer.upstream):
                tasks[upstream] >> tasks[layer.task_id]
    return dag
