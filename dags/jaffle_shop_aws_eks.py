"""jaffle_shop as an Airflow DAG with one task per dbt node, run in pods on Amazon EKS.

Shown only where execution.enabled_modes includes aws_eks; see include/blueprint/modes/aws_eks.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_aws_eks", mode="aws_eks")
