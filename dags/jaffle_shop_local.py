"""jaffle_shop as an Airflow DAG with one task per dbt model and its tests (Cosmos, local mode).

Runs dbt on the Airflow worker from its own virtual environment, started warm; see include/blueprint.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_local", mode="local")
