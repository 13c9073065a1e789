"""The maintenance DAG of this Airflow deployment: blueprint_sweeper deletes the dbt containers and
ACI container groups whose task instance is over (include/blueprint/sweeper.py).

It is shown while sweeper.enabled is true and docker or azure_container_instance is in
execution.enabled_modes; each of those modes gets one sweep task.
"""

from include.blueprint.sweeper import sweeper_dags

globals().update(sweeper_dags())
