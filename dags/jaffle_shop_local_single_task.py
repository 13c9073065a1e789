"""jaffle_shop as an Airflow DAG with a single `dbt build` task: the baseline for benchmarks.

Same dbt venv, profile and connection as jaffle_shop_local; see include/blueprint/modes.
"""

from include.blueprint.modes import build_single_task_dag

dag = build_single_task_dag("jaffle_shop_local_single_task", mode="local")
