"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run as Amazon ECS tasks.

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes aws_ecs.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_aws_ecs_single_task", mode="aws_ecs")
