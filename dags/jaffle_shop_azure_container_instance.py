"""jaffle_shop as an Airflow DAG with one task per dbt node, run in Azure Container Instances container groups.

Shown only where execution.enabled_modes includes azure_container_instance; see
include/blueprint/modes/azure_container_instance.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_azure_container_instance", mode="azure_container_instance")
