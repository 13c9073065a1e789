"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run as Cloud Run job executions.

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes gcp_cloud_run_job.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_gcp_cloud_run_job_single_task", mode="gcp_cloud_run_job")
