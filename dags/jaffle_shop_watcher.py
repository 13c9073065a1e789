"""jaffle_shop as an Airflow DAG with one task per dbt node, run as one dbt build
watched by one task per node (needs a triggerer).

Shown only where execution.enabled_modes includes watcher; see include/blueprint/modes/watcher.py.
"""

from include.blueprint.modes import build_dbt_dag

dag = build_dbt_dag("jaffle_shop_watcher", mode="watcher")
