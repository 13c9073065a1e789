"""jaffle_shop as an Airflow DAG with a single `dbt build` task, run in pods on Amazon EKS.

One cold start for the whole project, but a failure shows only as "dbt build failed". Shown only
where execution.enabled_modes includes aws_eks.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_aws_eks_single_task", mode="aws_eks")
