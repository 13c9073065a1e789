"""Airflow DAGs for the run benchmark: the shipped DAGs with one lever turned back, to show what each
lever is worth side by side, and the floors: plain DAGs with a shipped DAG's task graph whose tasks
do nothing, which measure Airflow's own cost of scheduling that graph. tools.bench.scheduler copies
this file into its dags folder next to the shipped DAG files; it is not a DAG file of the deployment.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from include.blueprint.modes import build_dbt_dag, build_single_task_dag
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import load_settings

PLAIN_DBT = {"BLUEPRINT__DBT__WARM_START": "false"}
COSMOS_WATCHER = {
    "BLUEPRINT__EXECUTION__WATCHER_DEFERRABLE": "true",
    "BLUEPRINT__EXECUTION__WATCHER_POKE_SECONDS": "10",
}
# dag_id -> (builder, mode, settings that differ from the shipped defaults)
LEVERS = {
    "lever_local_cosmos_defaults": (build_dbt_dag, "local", {"BLUEPRINT__EXECUTION__GRANULARITY": "node", **PLAIN_DBT}),
    "lever_local_node_warm": (build_dbt_dag, "local", {"BLUEPRINT__EXECUTION__GRANULARITY": "node"}),
    "lever_local_layer": (build_dbt_dag, "local", {"BLUEPRINT__EXECUTION__GRANULARITY": "layer"}),
    "lever_local_no_warm_up": (build_dbt_dag, "local", {}),  # its tasks' dbt server skips the warm-up
    "lever_single_task_plain_dbt": (build_single_task_dag, "local", PLAIN_DBT),
    "lever_watcher_cosmos_defaults": (build_dbt_dag, "watcher", {**PLAIN_DBT, **COSMOS_WATCHER}),
}
# floor DAG id -> the shipped DAG whose task graph it copies
FLOORS = {
    "floor_local": ("local", "jaffle_shop_local"),
    "floor_watcher": ("watcher", "jaffle_shop_watcher"),
    "floor_single_task": ("local", "jaffle_shop_local_single_task"),
}


def do_nothing() -> None:
    """A task that starts, does nothing and succeeds: what every task costs Airflow itself."""


def floor_dag(dag_id: str, template: DAG) -> DAG:
    """A plain DAG with the template's tasks and dependencies, each task doing nothing. (Not
    EmptyOperator: the scheduler marks those done without running them.)"""
    with DAG(dag_id, schedule=None, max_active_runs=1, tags=["benchmark"]) as dag:
        tasks = {
            task.task_id: PythonOperator(task_id=task.task_id, python_callable=do_nothing) for task in template.tasks
        }
    for task in template.tasks:
        for upstream in task.upstream_task_ids:
            tasks[upstream] >> tasks[task.task_id]
    return dag


BENCH_MODES = {**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, watcher]"}
for dag_id, (builder, mode, overrides) in LEVERS.items():
    globals()[dag_id] = builder(dag_id, mode, load_settings({**BENCH_MODES, **overrides}))
for task in globals()["lever_local_no_warm_up"].tasks:
    task.env = {**(task.env or {}), "WARM_DBT_WARM_UP": "0"}

shipped = {mode: declared_dags(mode, load_settings(BENCH_MODES)) for mode in ("local", "watcher")}
for dag_id, (mode, template_id) in FLOORS.items():
    globals()[dag_id] = floor_dag(dag_id, shipped[mode][template_id])
