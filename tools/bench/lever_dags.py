"""Airflow DAGs for the run benchmark: the shipped DAGs with one lever turned back, to show what each
lever is worth side by side. tools.bench.scheduler copies this file into its dags folder next to
the shipped DAG files; it is not a DAG file of the deployment. (The floors are in floor_dags.py.)
"""

from __future__ import annotations

import os

from airflow.sdk import get_parsing_context

from include.blueprint.modes import build_dbt_dag, build_single_task_dag
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
    # Their tasks' dbt server keeps no deserialised partial parse and freezes nothing.
    "lever_local_no_manifest_cache": (build_dbt_dag, "local", {}),
    "lever_single_task_no_manifest_cache": (build_single_task_dag, "local", {}),
    "lever_single_task_plain_dbt": (build_single_task_dag, "local", PLAIN_DBT),
    "lever_watcher_cosmos_defaults": (build_dbt_dag, "watcher", {**PLAIN_DBT, **COSMOS_WATCHER}),
}
BENCH_MODES = {**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, watcher]"}

# A task builds only its own DAG, as the shipped DAG files do (Airflow's parsing context).
TASK_DAG = get_parsing_context().dag_id
for dag_id, (builder, mode, overrides) in LEVERS.items():
    if TASK_DAG in (None, dag_id):
        globals()[dag_id] = builder(dag_id, mode, load_settings({**BENCH_MODES, **overrides}))
# Switches of the warm dbt server, set per task: the client starts a server of their own.
SERVER_SWITCHES = {
    "lever_local_no_warm_up": {"WARM_DBT_WARM_UP": "0"},
    "lever_local_no_manifest_cache": {"WARM_DBT_MANIFEST_CACHE": "0"},
    "lever_single_task_no_manifest_cache": {"WARM_DBT_MANIFEST_CACHE": "0"},
}
for dag_id, switches in SERVER_SWITCHES.items():
    for task in getattr(globals().get(dag_id), "tasks", ()):
        task.env = {**(task.env or {}), **switches}
