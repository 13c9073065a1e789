"""jaffle_shop as an Airflow DAG with one task per dbt node, run in pods of the dbt runtime image (Kubernetes).

Shown only where execution.enabled_modes includes kubernetes; see include/blueprint/modes/kubernetes.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_kubernetes", mode="kubernetes")
