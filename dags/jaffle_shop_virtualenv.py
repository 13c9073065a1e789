"""jaffle_shop as an Airflow DAG with one task per dbt model and its tests, run on the Airflow
worker, in a dbt venv Cosmos builds and caches.

Shown only where execution.enabled_modes includes virtualenv; see include/blueprint/modes/virtualenv.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_virtualenv", mode="virtualenv")
