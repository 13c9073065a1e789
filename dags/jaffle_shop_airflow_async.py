"""jaffle_shop as an Airflow DAG with one task per dbt node, run through Airflow's
deferrable SQL operators. Cosmos supports that only for BigQuery, so for Postgres it is refused.

Shown only where execution.enabled_modes includes airflow_async; see include/blueprint/modes/airflow_async.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_airflow_async", mode="airflow_async")
