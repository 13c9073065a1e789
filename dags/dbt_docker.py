"""The dbt DAGs of this Airflow deployment that run in the docker execution mode.

Each DAG is declared as data under `dags:` in include/blueprint/config/projects/<project>.yaml
(`make adopt` writes it); this file shows them only while docker is in execution.enabled_modes.
"""

from include.blueprint.pipelines import declared_dags

globals().update(declared_dags("docker"))
