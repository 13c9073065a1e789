"""jaffle_shop as an Airflow DAG with one task per dbt node, run as Cloud Run job executions.

Shown only where execution.enabled_modes includes gcp_cloud_run_job; see include/blueprint/modes/gcp_cloud_run_job.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_gcp_cloud_run_job", mode="gcp_cloud_run_job")
