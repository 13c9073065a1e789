"""The sweeper's decisions, on fake containers and task instance states (no engine, no database);
tests/container/test_sweeper.py runs it against the ACI emulator, Docker and Airflow's metadata."""

from __future__ import annotations

import datetime as dt
import os
from types import SimpleNamespace

import pytest

from include.blueprint import ownership
from include.blueprint.settings import BlueprintConfigError, load_settings
from include.blueprint.sweeper import DAG_ID, Leftover, sweep, sweeper_dags

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(hours=1)
GRACE = dt.timedelta(minutes=10)


def leftover(name: str, task_id: str, run_id: str = "r1", created: dt.datetime = OLD, map_index: int = -1,
             deployment: str = "prod", dag_id: str = "dag") -> Leftover:  # fmt: skip
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, map_index=map_index, try_number=1)
    return Leftover(name, ownership.labels_for(ti, run_id, deployment, created), created)


class FakeRuntime:
    def __init__(self, *leftovers: Leftover, failing: str = "") -> None:
        self.leftovers, self.failing, self.deleted = list(leftovers), failing, []

    def list(self) -> list[Leftover]:
        return self.leftovers

    def delete(self, name: str) -> None:
        if name == self.failing:
            raise OSError("engine said no")
        self.deleted.append(name)


class FakeStates:
    def __init__(self, states: dict[str, dict[str, dict[str, str | None]]]) -> None:
        self.states = states

    def task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str | None]]:
        runs = self.states.get(dag_id, {})
        return {run_id: runs[run_id] for run_id in run_ids if run_id in runs}

    def has_runs(self, dag_id: str) -> bool:
        return bool(self.states.get(dag_id))


STATES = FakeStates({"dag": {"r1": {"done": "success", "broken": "failed", "busy": "running", "waiting": "queued",
                                    "retrying": "up_for_retry", "deferred": "deferred", "cleared": None,
                                    "mapped_2": "success", "mapped_3": "running"}}})  # fmt: skip


def test_only_finished_or_missing_task_instances_lose_their_containers() -> None:
    runtime = FakeRuntime(
        *(leftover(f"dbt-{task}", task) for task in ("done", "broken", "busy", "waiting", "retrying", "deferred")),
        leftover("dbt-cleared", "cleared"),
        leftover("dbt-gone-task", "gone"),  # the run exists, the task instance does not
        leftover("dbt-gone-run", "done", run_id="deleted-run"),
        leftover("dbt-mapped-2", "mapped", map_index=2),
        leftover("dbt-mapped-3", "mapped", map_index=3),
    )
    result = sweep(runtime, STATES, "dbt", "prod", GRACE, NOW)
    deleted = {"dbt-done", "dbt-broken", "dbt-gone-task", "dbt-gone-run", "dbt-mapped-2"}
    assert set(runtime.deleted) == set(result["deleted"]) == deleted
    assert set(result["kept"]) == {"dbt-busy", "dbt-waiting", "dbt-retrying", "dbt-deferred", "dbt-cleared",
                                   "dbt-mapped-3"}  # fmt: skip


def test_young_foreign_and_unlabelled_containers_are_kept() -> None:
    unlabelled = Leftover("dbt-unlabelled", {ownership.OWNER: "prod"}, OLD)
    runtime = FakeRuntime(
        leftover("dbt-young", "done", created=NOW - dt.timedelta(minutes=9)),
        leftover("dbt-other-deployment", "done", deployment="dev"),
        leftover("etl-other-prefix", "done"),
        leftover("dbt-unknown-dag", "done", dag_id="not_here"),  # another deployment's DAG
        unlabelled,
        Leftover("dbt-no-owner", {k: v for k, v in leftover("x", "done").labels.items() if k != ownership.OWNER}, OLD),
    )
    result = sweep(runtime, STATES, "dbt", "prod", GRACE, NOW)
    assert runtime.deleted == []
    assert set(result["kept"]) == {"dbt-young", "dbt-unknown-dag", "dbt-unlabelled"}  # the others are not ours


def test_a_failed_deletion_fails_the_task_after_sweeping_the_others() -> None:
    runtime = FakeRuntime(leftover("dbt-a", "done"), leftover("dbt-b", "broken"), failing="dbt-a")
    with pytest.raises(RuntimeError, match=r"1 leftover.*dbt-a: engine said no"):
        sweep(runtime, STATES, "dbt", "prod", GRACE, NOW)
    assert runtime.deleted == ["dbt-b"]


def test_mark_ownership_adds_the_task_instance_to_existing_labels() -> None:
    task = SimpleNamespace(labels={"team": "data"})
    ti = SimpleNamespace(dag_id="d", task_id="t.run", map_index=-1, try_number=2)
    ownership.MarkOwnership("prod", "labels")({"task": task, "ti": ti, "run_id": "manual__1"})
    assert ownership.task_instance_of(task.labels) == ownership.TaskInstanceKey("d", "manual__1", "t.run", -1)
    assert task.labels["team"] == "data"
    assert task.labels[ownership.TRY_NUMBER] == "2"
    assert ownership.created_at(task.labels) is not None


@pytest.mark.parametrize(
    ("modes", "tasks"),
    [
        ("[local]", None),
        ("[local, docker]", ["sweep_docker"]),
        ("[docker, azure_container_instance]", ["sweep_azure_container_instance", "sweep_docker"]),
    ],
)
def test_the_dag_sweeps_the_enabled_modes_only(modes: str, tasks: list[str] | None) -> None:
    config = load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": modes,
                            "BLUEPRINT__RUNTIME__IMAGE": "dbt:1", "BLUEPRINT__SWEEPER__SCHEDULE": "'*/20 * * * *'",
                            "BLUEPRINT__AZURE_CONTAINER_INSTANCE__RESOURCE_GROUP": "rg",
                            "BLUEPRINT__AZURE_CONTAINER_INSTANCE__REGION": "westeurope"})  # fmt: skip
    dags = sweeper_dags(config)
    if tasks is None:
        assert dags == {}
        return
    dag = dags[DAG_ID]
    assert sorted(dag.task_dict) == tasks
    assert dag.max_active_runs == 1
    assert all(task.retries == 0 and task.owner == config.dags.owner for task in dag.tasks)
    assert dag.schedule == "*/20 * * * *"


def test_a_disabled_sweeper_has_no_dag() -> None:
    config = load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[docker]",
                            "BLUEPRINT__RUNTIME__IMAGE": "dbt:1", "BLUEPRINT__SWEEPER__ENABLED": "false"})  # fmt: skip
    assert sweeper_dags(config) == {}


def test_sweeper_settings_are_validated_with_the_rest() -> None:
    with pytest.raises(BlueprintConfigError) as error:
        load_settings({**os.environ, "BLUEPRINT__SWEEPER__SCHEDULE": "every 5 minutes",
                       "BLUEPRINT__SWEEPER__GRACE_MINUTES": "-1",
                       "BLUEPRINT__SWEEPER__DEPLOYMENT": "Prod_1"})  # fmt: skip
    message = str(error.value)
    assert "(3 problem(s))" in message
    assert "sweeper.schedule: Value error, not a cron expression" in message
    assert "sweeper.grace_minutes: " in message
    assert "sweeper.deployment: " in message
