"""Run one DAG of dags/ to completion with `dag.test()` and print a JSON summary on the last line.

Runs inside the Airflow venv with the environment from tools.local_env (AIRFLOW_HOME, the
connection, PYTHONPATH); the main job, the tests and the benchmarks all run DAGs through here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

import airflow  # noqa: F401  # before cosmos, which the DAG files import
from airflow.dag_processing.dagbag import DagBag

from tools.local_env import DAGS_DIR


def run(dag_id: str) -> dict[str, object]:
    bag = DagBag(dag_folder=str(DAGS_DIR))
    if bag.import_errors:
        return {"dag_id": dag_id, "state": "import_error", "import_errors": dict(bag.import_errors)}
    dag = bag.dags.get(dag_id)
    if dag is None:
        return {"dag_id": dag_id, "state": "missing", "known": sorted(bag.dag_ids)}
    started = time.monotonic()
    dag_run = dag.test()
    elapsed = time.monotonic() - started
    tasks = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return {
        "dag_id": dag_id,
        "state": str(dag_run.state),
        "seconds": round(elapsed, 2),
        "tasks": tasks,
        "counts": dict(Counter(tasks.values())),
        "models": model_states(dag, tasks),
    }


def model_states(dag: Any, tasks: dict[str, str]) -> dict[str, str]:
    """<project>.<model> -> the state of the task that finished it (the task with its asset)."""
    from include.blueprint.assets import task_references

    return {reference: tasks.get(task.task_id, "none") for task in dag.tasks for reference in task_references(task)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id")
    summary = run(parser.parse_args().dag_id)
    print(json.dumps(summary))
    return 0 if summary["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
