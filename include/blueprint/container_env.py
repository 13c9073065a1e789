"""The dbt image's environment, built from the warehouse connection, and how its secrets travel.

Plain variables are Jinja templates on the Airflow connection (`{{ conn.<id>.host }}`), rendered by
Airflow when the task starts, as in Cosmos's ACI guide. Secret variables are never templates: a
`pre_execute` hook reads them from the connection after the rendered fields have been recorded,
and hands them to the runtime's secret channel (Docker's private environment, ACI's secured
variables). Kubernetes, ECS and Cloud Run read them from their own secret stores instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.blueprint.dag_specs import DagSpec
from include.blueprint.runtime import CONNECTION_VARIABLES, SCHEMA_VARIABLE, SECRET_VARIABLES


def plain_environment(spec: DagSpec) -> dict[str, str]:
    """Every non-secret variable of the contract, as templates on the warehouse connection."""
    conn_id = spec.settings.warehouse.conn_id
    environment = {name: f"{{{{ conn.{conn_id}.{field} }}}}" for name, field in CONNECTION_VARIABLES.items()}
    environment[SCHEMA_VARIABLE] = spec.project.target_schema
    environment.update(spec.settings.runtime.environment)
    return environment


def secret_variable_names() -> list[str]:
    return sorted(SECRET_VARIABLES)


@dataclass(frozen=True)
class InjectSecrets:
    """A `pre_execute` hook: put the secret variables into `operator.<attribute>` at run time.

    Runs after Airflow has rendered and stored the template fields, so the values appear in no
    rendered field; fetching the connection registers them with Airflow's log masker.
    """

    conn_id: str
    attribute: str

    def __call__(self, context: dict[str, Any]) -> None:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(self.conn_id)
        secrets = {name: getattr(connection, field) for name, field in SECRET_VARIABLES.items()}
        missing = sorted(name for name, value in secrets.items() if not value)
        if missing:
            raise ValueError(f"connection {self.conn_id!r} has no value for {', '.join(missing)}")
        operator = context["task"]
        setattr(operator, self.attribute, {**(getattr(operator, self.attribute) or {}), **secrets})
