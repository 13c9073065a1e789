"""The render benchmark's floor: the per-model DAG's task graph built with plain Airflow operators.

`plan(manifest)` derives, with a few dictionary passes over dbt's manifest.json, the graph our
Cosmos DAG renders at the `model` granularity: one `<name>_<type>_build` task per model, seed and
snapshot, waiting for the tasks of its parents, and one `<test>_test` task after the parents of a
test that reads more than one of them (Cosmos detaches those; the parents' builds exclude them).
`build(...)` turns the plan into a DAG of EmptyOperators (Airflow's own floor) or BashOperators
carrying the dbt command each task would run (a fair stand-in for an operator with arguments).
The benchmark checks that the task ids and dependencies equal those of the Cosmos DAG.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILT_TYPES = ("model", "seed", "snapshot")
OPERATORS = ("empty", "bash")


@dataclass(frozen=True)
class PlainTask:
    task_id: str
    command: str  # "build" or "test"
    select: str
    exclude: tuple[str, ...]
    upstream: tuple[str, ...]


def plan(manifest: dict[str, Any]) -> list[PlainTask]:
    """The per-model task graph of every node of the manifest (no selection, no ephemeral models)."""
    nodes = manifest["nodes"]
    built = {
        uid: f"{node['name']}_{node['resource_type']}_build"
        for uid, node in nodes.items()
        if node["resource_type"] in BUILT_TYPES and node.get("config", {}).get("materialized") != "ephemeral"
    }
    shared_tests: dict[str, list[str]] = {}  # test uid -> its built parents, when more than one
    excluded: dict[str, list[str]] = {uid: [] for uid in built}
    for uid, node in nodes.items():
        if node["resource_type"] != "test":
            continue
        parents = sorted({parent for parent in node["depends_on"].get("nodes", []) if parent in built})
        if len(parents) > 1:
            shared_tests[uid] = parents
            for parent in parents:
                excluded[parent].append(node["name"])
    tasks = [
        PlainTask(
            task_id,
            "build",
            "fqn:" + ".".join(nodes[uid].get("fqn") or [nodes[uid]["name"]]),
            tuple(sorted(excluded[uid])),
            tuple(sorted({built[p] for p in nodes[uid]["depends_on"].get("nodes", []) if p in built})),
        )
        for uid, task_id in built.items()
    ]
    tasks += [
        PlainTask(f"{nodes[uid]['name']}_test", "test", nodes[uid]["name"], (), tuple(built[p] for p in parents))
        for uid, parents in shared_tests.items()
    ]
    return tasks


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def dbt_command(task: PlainTask, dbt: str, project_dir: Path) -> str:
    """The command line a task would run: what a hand-written BashOperator DAG would carry."""
    words = [dbt, task.command, "--select", task.select]
    if task.exclude:
        words += ["--exclude", *task.exclude]
    words += ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    template = " --vars '{{ params.dbt_vars | tojson }}'{% if params.full_refresh %} --full-refresh{% endif %}"
    return shlex.join(words) + template


def build(
    dag_arguments: dict[str, Any],
    project_dir: Path,
    manifest_path: Path,
    operator: str = "empty",
    *,
    dbt: str = "dbt",
    env: dict[str, str] | None = None,
) -> Any:
    """A DAG with `dag_arguments` and the plan of the manifest, built with `operator` ("empty" or "bash")."""
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    if operator not in OPERATORS:
        raise ValueError(f"unknown plain operator {operator!r}; known: {', '.join(OPERATORS)}")
    with DAG(**dag_arguments) as dag:
        graph = plan(read_manifest(manifest_path))
        if operator == "empty":
            tasks = {task.task_id: EmptyOperator(task_id=task.task_id) for task in graph}
        else:
            tasks = {
                task.task_id: BashOperator(
                    task_id=task.task_id,
                    bash_command=dbt_command(task, dbt, project_dir),
                    env=env or {},
                    append_env=True,
                    cwd=str(project_dir),
                )
                for task in graph
            }
        for task in graph:
            for upstream in task.upstream:
                tasks[upstream] >> tasks[task.task_id]
    return dag
