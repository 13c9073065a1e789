"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run in pods of the dbt runtime image (Kubernetes).

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes kubernetes.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_kubernetes_single_task", mode="kubernetes")
