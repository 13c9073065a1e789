"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run in Azure Container Instances container groups.

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes azure_container_instance.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_azure_container_instance_single_task", mode="azure_container_instance")
