"""jaffle_shop as an Airflow DAG with one task per dbt node, run in containers of the dbt runtime image (Docker).

Shown only where execution.enabled_modes includes docker; see include/blueprint/modes/docker.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_docker", mode="docker")
