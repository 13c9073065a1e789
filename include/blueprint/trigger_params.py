"""The trigger form of every dbt DAG: full refresh and dbt variables, validated by Airflow.

Airflow validates the values against each Param's JSON schema before a run is created, shows both
in the trigger form, and renders them into the dbt command, which each task logs.
"""

from __future__ import annotations

from typing import Any

FULL_REFRESH = "full_refresh"
DBT_VARS = "dbt_vars"


def dag_params() -> dict[str, Any]:
    from airflow.sdk import Param

    return {
        FULL_REFRESH: Param(
            False,
            type="boolean",
            title="Full refresh",
            description="Rebuild incremental models and reload seeds from scratch (dbt --full-refresh).",
        ),
        DBT_VARS: Param(
            {},
            type="object",
            title="dbt variables",
            description=(
                'Passed to every dbt command as --vars, e.g. {"start_date": "2026-01-01"}. They appear in the '
                "task log and the rendered fields: never put a secret here (dbt's env_var() reads those)."
            ),
        ),
    }


def operator_arguments() -> dict[str, Any]:
    """Cosmos operator arguments rendered from the run's params when each task starts.

    `full_refresh` is a template field of Cosmos's run, seed and build operators (a rendered
    "True"/"False" is read as a boolean); other operators drop it. `vars` renders as JSON, which
    dbt reads as YAML.
    """
    return {
        FULL_REFRESH: f"{{{{ params.{FULL_REFRESH} }}}}",
        "vars": f"{{{{ params.{DBT_VARS} | tojson }}}}",
    }
