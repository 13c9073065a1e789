"""jaffle_shop as an Airflow DAG with one task per dbt node, run as Amazon ECS tasks.

Shown only where execution.enabled_modes includes aws_ecs; see include/blueprint/modes/aws_ecs.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_aws_ecs", mode="aws_ecs")
