"""What any declared DAG must look like, derived from the manifest and the settings alone, so the
DAG tests hold for whatever dbt project a team adopts (jaffle_shop's golden lists are one case).

A DAG's tasks carry the assets of the models, seeds and snapshots they finish
(include/blueprint/assets.py): that is the node -> task map these checks read.
"""

from __future__ import annotations

from typing import Any

from include.blueprint import assets
from include.blueprint.dag_specs import DagSpec
from include.blueprint.pipelines import built_by
from include.blueprint.selection import every_node
from include.blueprint.trigger_params import DBT_VARS, FULL_REFRESH


def finishing_task(dag: Any) -> dict[str, list[str]]:
    """<project>.<model> -> ids of the tasks carrying its asset."""
    found: dict[str, list[str]] = {}
    for task in dag.tasks:
        for reference in assets.task_references(task):
            found.setdefault(reference, []).append(task.task_id)
    return found


def _starting_tasks(dag: Any, unique_id: str, finishing: str) -> list[str]:
    """The tasks that start building a node: a Cosmos group's roots (its run), else the one task."""
    task_or_group = getattr(dag, "tasks_map", {}).get(unique_id)
    if task_or_group is not None and hasattr(task_or_group, "get_roots"):
        return [task.task_id for task in task_or_group.get_roots()]
    return [finishing]


def _built_ancestors(unique_id: str, nodes: dict[str, Any], built: set[str]) -> set[str]:
    """The built nodes a node reads, directly or through ephemeral models."""
    found: set[str] = set()
    pending = list(nodes[unique_id].depends_on) if unique_id in nodes else []
    while pending:
        parent = pending.pop()
        if parent in built:
            found.add(parent)
        elif parent in nodes:
            pending.extend(nodes[parent].depends_on)
    return found


def problems_of(dag: Any, spec: DagSpec) -> list[str]:
    """Every way the DAG departs from its declaration, its manifest and the policy."""
    problems = []
    expected = built_by(spec)
    finishing = finishing_task(dag)
    if set(finishing) != expected:
        problems.append(f"builds {sorted(set(finishing) ^ expected)} differently from its selection")
    problems += [f"{ref} is finished by {len(ids)} tasks" for ref, ids in finishing.items() if len(ids) != 1]
    nodes = every_node(spec)
    reference_of = {uid: assets.reference_of(spec, node) for uid, node in nodes.items() if assets.is_built(node)}
    built = {uid for uid, reference in reference_of.items() if reference in finishing}
    for uid in sorted(built):
        task_id = finishing[reference_of[uid]][0]
        for start in _starting_tasks(dag, uid, task_id):
            upstream = {task.task_id for task in dag.get_task(start).get_flat_relatives(upstream=True)}
            for parent in _built_ancestors(uid, nodes, built):
                parent_task = finishing[reference_of[parent]][0]
                if parent_task not in upstream | {start, task_id}:
                    problems.append(f"{reference_of[uid]} starts in {start} before {parent_task} finished")
    return problems + _policy_problems(dag, spec)


def _policy_problems(dag: Any, spec: DagSpec) -> list[str]:
    policy = spec.policy
    problems = []
    if dag.tags != {*policy.tags, spec.project_name}:
        problems.append(f"tags {sorted(dag.tags)}")
    if (dag.max_active_runs, dag.catchup) != (1, False):
        problems.append("runs may overlap or catch up")
    if not {FULL_REFRESH, DBT_VARS} <= set(dag.params):
        problems.append("the trigger form lacks full_refresh or dbt_vars")
    for task in dag.tasks:
        if (task.owner, task.retries) != (policy.owner, policy.retries):
            problems.append(f"{task.task_id}: owner {task.owner}, retries {task.retries}")
        if task.retry_delay.total_seconds() != policy.retry_delay_seconds:
            problems.append(f"{task.task_id}: retry delay {task.retry_delay}")
    return problems
