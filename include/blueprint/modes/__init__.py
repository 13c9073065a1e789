"""One builder per Cosmos execution mode, chosen through an explicit mapping.

Builders import their provider packages inside themselves, so a deployment that uses only the
local mode parses without Docker, Kubernetes or cloud provider packages installed.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow.sdk import DAG

from include.blueprint.modes import local
from include.blueprint.settings import BlueprintConfigError, Settings, settings

ModeBuilder = Callable[[str, Settings], DAG]

MODE_BUILDERS: dict[str, ModeBuilder] = {
    "local": local.build,
}


def build_dbt_dag(dag_id: str, mode: str, config: Settings | None = None) -> DAG:
    """Render the dbt project into a DAG with one task per dbt node, run in `mode`."""
    try:
        builder = MODE_BUILDERS[mode]
    except KeyError:
        raise BlueprintConfigError(
            f"unknown execution mode {mode!r}; supported: {', '.join(sorted(MODE_BUILDERS))}"
        ) from None
    return builder(dag_id, config or settings())
