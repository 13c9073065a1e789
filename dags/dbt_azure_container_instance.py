"""The dbt DAGs of this Airflow deployment that run in the azure_container_instance execution mode.

Each DAG is declared as data under `dags:` in include/blueprint/config/projects/<project>.yaml
(`make adopt` writes it); this file shows them only while azure_container_instance is in execution.enabled_modes.
"""

from include.blueprint.pipelines import declared_dags

globals().update(declared_dags("azure_container_instance"))
