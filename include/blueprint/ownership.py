"""Who a dbt container or container group belongs to: labels (Docker) and tags (ACI) set when it
is created, read back by the sweeper (sweeper.py).

A runtime name (names.py) ends in a hash of the task instance, which cannot be turned back into
one, so each container carries its task instance in labels instead. The owner label holds the
deployment's name (`sweeper.deployment`): two Airflow deployments sharing a Docker engine or a
resource group each sweep only their own containers, since each one's metadata knows only its own
task instances. Azure tag values hold up to 256 characters; Airflow's ids are at most 250.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

OWNER = "airflow-dbt-blueprint"
DAG_ID = "airflow-dag-id"
RUN_ID = "airflow-run-id"
TASK_ID = "airflow-task-id"
MAP_INDEX = "airflow-map-index"
TRY_NUMBER = "airflow-try-number"
# ACI returns no creation time for a container group; Docker's own `Created` is used there.
CREATED = "airflow-created-at"


class TaskInstanceKey(NamedTuple):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


def labels_for(ti: Any, run_id: str, deployment: str, now: dt.datetime | None = None) -> dict[str, str]:
    """The labels of a container started by task instance `ti` (its current try)."""
    created = now or dt.datetime.now(dt.UTC)
    return {
        OWNER: deployment,
        DAG_ID: ti.dag_id,
        RUN_ID: run_id,
        TASK_ID: ti.task_id,
        MAP_INDEX: str(ti.map_index),
        TRY_NUMBER: str(ti.try_number),
        CREATED: created.isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class MarkOwnership:
    """A `pre_execute` step: put the task instance's labels into `operator.<attribute>` (ACI's
    `tags`, Docker's `labels`), where the operator reads them when it creates the container."""

    deployment: str
    attribute: str

    def __call__(self, context: dict[str, Any]) -> None:
        operator = context["task"]
        labels = labels_for(context["ti"], context["run_id"], self.deployment)
        setattr(operator, self.attribute, {**(getattr(operator, self.attribute, None) or {}), **labels})


def task_instance_of(labels: dict[str, str]) -> TaskInstanceKey | None:
    """The task instance a container's labels name; None when they name none completely."""
    try:
        key = TaskInstanceKey(labels[DAG_ID], labels[RUN_ID], labels[TASK_ID], int(labels[MAP_INDEX]))
    except (KeyError, ValueError):
        return None
    return key if all(key[:3]) else None


def created_at(labels: dict[str, str]) -> dt.datetime | None:
    try:
        created = dt.datetime.fromisoformat(labels[CREATED])
    except (KeyError, ValueError):
        return None
    return created if created.tzinfo else None
