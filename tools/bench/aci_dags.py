"""Airflow DAGs for the ACI benchmark under a real scheduler: the ACI DAG at each task granularity
(`aci_node`, `aci_model`, `aci_layer`, `aci_project`) and the single-task ACI DAG
(`aci_single_task`), side by side in one dags folder. `python -m tools.bench.aci --scheduler` copies
this file there; it is not a DAG file of the deployment.
"""

from __future__ import annotations

import os

from include.blueprint.modes import build_dbt_dag, build_single_task_dag
from include.blueprint.runtime import ALL_GRANULARITIES
from include.blueprint.settings import load_settings

MODE = "azure_container_instance"

for granularity in ALL_GRANULARITIES:
    settings = load_settings({**os.environ, "BLUEPRINT__EXECUTION__GRANULARITY": granularity})
    globals()[f"aci_{granularity}"] = build_dbt_dag(f"aci_{granularity}", MODE, settings)
aci_single_task = build_single_task_dag("aci_single_task", MODE, load_settings(dict(os.environ)))
