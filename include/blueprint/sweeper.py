"""The sweeper: a maintenance DAG that deletes dbt containers (docker mode) and ACI container
groups (azure_container_instance mode) whose task instance is over.

A task that ends in any way Airflow sees deletes its own container. A worker lost without a
SIGTERM (SIGKILL, node failure) cannot, and its ACI group stays in Azure; a failed docker-mode
container stays on the engine for its logs (`auto_remove="success"`). Airflow's metadata decides
what is left over, read through the Task SDK (tasks have no database access in Airflow 3):

- only containers named `<runtime.name_prefix>-…` whose owner label is this deployment's are
  looked at (ownership.py); anything else on the engine or in the resource group is never touched;
- one younger than `sweeper.grace_minutes` is kept, whatever its task instance says;
- one whose task instance is finished (success, failed, skipped, upstream_failed, removed) or no
  longer exists is deleted; every other state (running, queued, scheduled, deferred, up_for_retry,
  up_for_reschedule, restarting, none) keeps it. A lost try's container is therefore deleted once
  its task instance has finished for good, never while a retry of it runs;
- a DAG with no run at all in this deployment's metadata is someone else's: kept.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from airflow.sdk import DAG

from include.blueprint import ownership
from include.blueprint.settings import Settings, settings

DAG_ID = "blueprint_sweeper"
# The modes whose containers outlive a lost worker and that this sweeper can list.
SWEPT_MODES = ("azure_container_instance", "docker")
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    name: str
    labels: dict[str, str]
    created: dt.datetime | None


class Runtime(Protocol):
    def list(self) -> list[Leftover]: ...
    def delete(self, name: str) -> None: ...


class States(Protocol):
    def task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str | None]]: ...
    def has_runs(self, dag_id: str) -> bool: ...


@dataclass(frozen=True)
class TaskSdkStates:
    """Task instance states through the running task's Task SDK (the execution API)."""

    ti: Any

    def task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str | None]]:
        return self.ti.get_task_states(dag_id=dag_id, run_ids=run_ids)

    def has_runs(self, dag_id: str) -> bool:
        return self.ti.get_dr_count(dag_id=dag_id) > 0


@dataclass(frozen=True)
class Verdict:
    leftover: Leftover
    delete: bool
    reason: str


def _state_key(key: ownership.TaskInstanceKey) -> str:
    # How the execution API's /task-instances/states names a mapped task instance.
    return key.task_id if key.map_index < 0 else f"{key.task_id}_{key.map_index}"


def verdicts(leftovers: list[Leftover], states: States, now: dt.datetime, grace: dt.timedelta) -> list[Verdict]:
    """Which of our leftovers to delete, and why each one is deleted or kept."""
    found: list[Verdict] = []
    by_dag: dict[str, list[tuple[Leftover, ownership.TaskInstanceKey]]] = defaultdict(list)
    for leftover in leftovers:
        key = ownership.task_instance_of(leftover.labels)
        if key is None or leftover.created is None:
            found.append(Verdict(leftover, False, "its labels name no task instance or creation time"))
        elif now - leftover.created < grace:
            found.append(Verdict(leftover, False, f"younger than the grace period ({grace})"))
        else:
            by_dag[key.dag_id].append((leftover, key))
    for dag_id, entries in by_dag.items():
        runs = states.task_states(dag_id, sorted({key.run_id for _, key in entries}))
        known_dag: bool | None = None
        for leftover, key in entries:
            run = runs.get(key.run_id, {})
            if _state_key(key) in run:
                state = run[_state_key(key)]
                found.append(Verdict(leftover, state in FINISHED, f"task instance {key} is {state}"))
                continue
            if known_dag is None:
                known_dag = states.has_runs(dag_id)
            if known_dag:
                found.append(Verdict(leftover, True, f"task instance {key} no longer exists"))
            else:
                found.append(Verdict(leftover, False, f"DAG {dag_id} has no run in this deployment"))
    return found


def is_ours(leftover: Leftover, prefix: str, deployment: str) -> bool:
    return leftover.name.startswith(f"{prefix}-") and leftover.labels.get(ownership.OWNER) == deployment


def sweep(runtime: Runtime, states: States, prefix: str, deployment: str, grace: dt.timedelta,
          now: dt.datetime | None = None) -> dict[str, list[str]]:  # fmt: skip
    """Delete our leftovers whose task instance is over; the names deleted and kept."""
    now = now or dt.datetime.now(dt.UTC)
    ours = [leftover for leftover in runtime.list() if is_ours(leftover, prefix, deployment)]
    result: dict[str, list[str]] = {"deleted": [], "kept": []}
    failures = []
    for verdict in verdicts(ours, states, now, grace):
        name = verdict.leftover.name
        if not verdict.delete:
            log.info("keeping %s: %s", name, verdict.reason)
            result["kept"].append(name)
            continue
        log.info("deleting %s: %s", name, verdict.reason)
        try:
            runtime.delete(name)
        except Exception as error:  # one stuck container must not stop the others being swept
            log.error("could not delete %s: %s", name, error)
            failures.append(f"{name}: {error}")
        else:
            result["deleted"].append(name)
    if failures:
        raise RuntimeError(f"{len(failures)} leftover(s) could not be deleted: " + "; ".join(failures))
    return result


@dataclass(frozen=True)
class AciContainerGroups:
    """Container groups of one resource group, through the Azure provider's ACI hook."""

    conn_id: str
    resource_group: str

    @cached_property
    def _hook(self) -> Any:
        from airflow.providers.microsoft.azure.hooks.container_instance import AzureContainerInstanceHook

        return AzureContainerInstanceHook(azure_conn_id=self.conn_id)

    def list(self) -> list[Leftover]:
        groups = self._hook.connection.container_groups.list_by_resource_group(self.resource_group)
        return [
            Leftover(group.name, dict(group.tags or {}), ownership.created_at(dict(group.tags or {})))
            for group in groups
        ]

    def delete(self, name: str) -> None:
        self._hook.delete(self.resource_group, name)


@dataclass(frozen=True)
class DockerContainers:
    """Containers carrying this deployment's owner label, through the Docker provider's hook."""

    docker_url: str
    deployment: str

    @cached_property
    def _client(self) -> Any:
        from airflow.providers.docker.hooks.docker import DockerHook

        # No registry login: listing and removing containers needs none.
        return DockerHook(docker_conn_id=None, base_url=self.docker_url).api_client

    def list(self) -> list[Leftover]:
        found = self._client.containers(all=True, filters={"label": f"{ownership.OWNER}={self.deployment}"})
        return [
            Leftover(
                container["Names"][0].lstrip("/"),
                container.get("Labels") or {},
                dt.datetime.fromtimestamp(container["Created"], dt.UTC),
            )
            for container in found
        ]

    def delete(self, name: str) -> None:
        self._client.remove_container(name, force=True)


@dataclass(frozen=True)
class SweepTask:
    """The python_callable of one sweep task (frozen settings, so the DAG's hash is stable)."""

    runtime: AciContainerGroups | DockerContainers
    prefix: str
    deployment: str
    grace_minutes: int

    def __call__(self, ti: Any, **_: Any) -> dict[str, list[str]]:
        grace = dt.timedelta(minutes=self.grace_minutes)
        return sweep(self.runtime, TaskSdkStates(ti), self.prefix, self.deployment, grace)


def runtime_of(mode: str, config: Settings) -> AciContainerGroups | DockerContainers:
    if mode == "azure_container_instance":
        aci = config.azure_container_instance
        return AciContainerGroups(aci.ci_conn_id, aci.resource_group or "")
    return DockerContainers(config.docker.docker_url, config.sweeper.deployment)


def sweeper_dags(config: Settings | None = None) -> dict[str, DAG]:
    """{DAG_ID: the sweeper DAG}, with one task per enabled mode it sweeps; {} when there is none."""
    from airflow.providers.standard.operators.python import PythonOperator

    config = config or settings()
    modes = [mode for mode in SWEPT_MODES if config.mode_enabled(mode)]
    if not config.sweeper.enabled or not modes:
        return {}
    options, start = config.sweeper, config.dags.start_date
    with DAG(
        dag_id=DAG_ID,
        description="deletes dbt containers and ACI container groups whose task instance is over",
        schedule=options.schedule,
        start_date=dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["maintenance"],
        doc_md=__doc__,
        # The next run sweeps again: a retry would only repeat this one.
        default_args={"owner": config.dags.owner, "retries": 0, "execution_timeout": dt.timedelta(minutes=10)},
    ) as dag:
        for mode in modes:
            callable_ = SweepTask(runtime_of(mode, config), config.runtime.name_prefix, options.deployment,
                                  options.grace_minutes)  # fmt: skip
            PythonOperator(task_id=f"sweep_{mode}", python_callable=callable_)
    return {DAG_ID: dag}
