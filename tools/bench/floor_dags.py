"""The run benchmark's floors: plain Airflow DAGs with a shipped DAG's task graph whose tasks do
nothing, to measure what Airflow's own scheduling of that graph costs under the same scheduler.

The graphs come from floor_graphs.json next to this file, which tools.bench.scheduler writes from
the shipped DAGs (floor_graphs): parsing this file imports neither Cosmos nor the blueprint, so a
floor task starts exactly as a plain Airflow task does. It is not a DAG file of the deployment.
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

GRAPHS = Path(__file__).with_name("floor_graphs.json")


def do_nothing() -> None:
    """A task that starts, does nothing and succeeds: what every task costs Airflow itself."""


def floor_dag(dag_id: str, upstreams: dict[str, list[str]]) -> DAG:
    """task id -> its upstream task ids, as a DAG of tasks doing nothing. (Not EmptyOperator: the
    scheduler marks those done without running them.)"""
    with DAG(dag_id, schedule=None, max_active_runs=1, tags=["benchmark"]) as dag:
        tasks = {task_id: PythonOperator(task_id=task_id, python_callable=do_nothing) for task_id in upstreams}
    for task_id, parents in upstreams.items():
        for parent in parents:
            tasks[parent] >> tasks[task_id]
    return dag


if GRAPHS.exists():
    for dag_id, graph in json.loads(GRAPHS.read_text()).items():
        globals()[dag_id] = floor_dag(dag_id, graph)
