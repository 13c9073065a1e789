"""The optional first task of a DAG: `dbt source freshness` of the sources its selection reads.

It runs with the same runtime as the DAG's other tasks (Cosmos's DbtSource<Runtime>Operator,
the sibling of the mode's `dbt build` operator), and every task of the DAG waits for it. dbt
decides from the project's own freshness config: a source past `error_after` fails the task, so
nothing is built from stale data; past `warn_after` the task succeeds and logs the warning.
"""

from __future__ import annotations

import sys
from typing import Any

from include.blueprint.dag_specs import DagSpec
from include.blueprint.selection import selected_nodes
from include.blueprint.settings import BlueprintConfigError

TASK_ID = "source_freshness"
# Modes whose workers run dbt like the local mode's (the watcher's producer does).
RUNS_LIKE_LOCAL = ("watcher",)


def sources_read(spec: DagSpec) -> list[str]:
    """`source:<source>.<table>` selectors of the sources the spec's selected nodes read."""
    found = set()
    for node in selected_nodes(spec).values():
        for parent in node.depends_on:
            if parent.startswith("source."):
                _, _package, source, table = parent.split(".", 3)
                found.add(f"source:{source}.{table}")
    return sorted(found)


def _operator(spec: DagSpec) -> tuple[type, dict[str, Any]]:
    from include.blueprint.modes import MODES

    module = MODES["local" if spec.mode in RUNS_LIKE_LOCAL else spec.mode]
    if hasattr(module, "freshness_operator"):
        return module.freshness_operator(spec)
    if not hasattr(module, "build_operator"):
        raise BlueprintConfigError(
            f"source_freshness: mode {spec.mode} cannot run a dbt command of its own; "
            "run the DAG in another mode or drop source_freshness"
        )
    build_class, arguments = module.build_operator(spec)
    return _source_operator_beside(build_class), arguments


def _source_operator_beside(build_class: type) -> type:
    """The `dbt source freshness` operator Cosmos defines next to a `dbt build` operator. Found by
    its mixin, not its name: Cosmos 1.15 names the EKS one DbtSourceAzureContainerInstanceOperator."""
    from cosmos.operators.base import DbtSourceMixin

    module = sys.modules[build_class.__module__]
    [source_class] = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, DbtSourceMixin) and value.__module__ == module.__name__
    ]
    return source_class


def add_freshness_task(dag: Any, spec: DagSpec) -> None:
    """A `source_freshness` task upstream of every other task of the DAG."""
    sources = sources_read(spec)
    if not sources:
        raise BlueprintConfigError("source_freshness: the selection reads no dbt source; drop source_freshness")
    operator_class, arguments = _operator(spec)
    roots = [task for task in dag.tasks if not task.upstream_task_ids]
    with dag:
        freshness = operator_class(task_id=TASK_ID, select=sources, emit_datasets=False, **arguments)
    for root in roots:
        freshness >> root
