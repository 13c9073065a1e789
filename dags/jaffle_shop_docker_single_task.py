"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run in containers of the dbt runtime image (Docker).

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes docker.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_docker_single_task", mode="docker")
