"""ExecutionMode.AIRFLOW_ASYNC: dbt compiles, Airflow's deferrable database operators run the SQL.

Cosmos 1.15 supports it only for BigQuery, so for this project's PostgreSQL target the builder
refuses with the list of what is supported instead of failing inside Cosmos at import time.
"""

from __future__ import annotations

from cosmos import DbtDag

from include.blueprint.dag_specs import DagSpec
from include.blueprint.settings import BlueprintConfigError

WAREHOUSE_TYPE = "postgres"


def supported_warehouses() -> list[str]:
    from cosmos.operators.airflow_async import _SUPPORTED_DATABASES

    return sorted(_SUPPORTED_DATABASES)


def build(spec: DagSpec) -> DbtDag:
    supported = supported_warehouses()
    raise BlueprintConfigError(
        f"{spec.dag_id}: mode airflow_async supports only {', '.join(supported)} warehouses in Cosmos 1.15, "
        f"and this project targets {WAREHOUSE_TYPE}. Remove airflow_async from execution.enabled_modes, "
        "or use watcher for per-node tasks at close to single-task cost."
    )
