"""ExecutionMode.WATCHER: one `dbt build` produces every node; one task per node reports its status.

Per-node visibility at close to single-task cost. Its consumer tasks are deferrable sensors, so it
needs a running triggerer: under `airflow dags test` / `dag.test()` it can deadlock (the serial
runner may start a consumer before the producer). Run it under a real scheduler.
"""

from __future__ import annotations

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.dag_specs import DagSpec

DESCRIPTION = "one dbt build on the worker, one task per dbt node watching its result"


def build(spec: DagSpec) -> DbtDag:
    settings = spec.settings
    executable, environment = cosmos_configs.dbt_command(settings)
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.WATCHER,
        invocation_mode=cosmos_configs.DBT_INVOCATION,
        dbt_executable_path=executable,
    )
    consumers = {
        "deferrable": settings.execution.watcher_deferrable,
        "poke_interval": settings.execution.watcher_poke_seconds,
    }
    return cosmos_configs.cosmos_dag(spec, DESCRIPTION, execution, {"env": environment, **consumers})
