"""Several workers on a real distributed executor: Airflow's CeleryExecutor with a Redis broker
and two Celery workers, each with its own TMPDIR and so its own warm dbt server.

Four DAG runs of different DAGs run at once. DAGs of one project share its target schema and
would race on its relations (the `allow_overlap` rule), so each DAG here belongs to a project of
its own, registered through BLUEPRINT__PROJECTS__* variables: the same jaffle_shop sources at four
granularities (node, model, layer, and project: the single-task DAG), each building into its own
schema. Then a worker is lost with SIGKILL in the middle of a dbt task: Airflow detects it by the
missed task heartbeats, the retry runs on the surviving worker, and no dbt command is left running.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from include.blueprint.settings import load_settings
from tests import leaks
from tests.conftest import actual_marts, expected_marts
from tools.airflow_services import LocalAirflow, RunResult
from tools.celery_workers import CeleryWorkers, project_per_dag, warm_dbt_commands, warm_dbt_processes
from tools.local_env import airflow_env
from tools.manifest import parse_project
from tools.postgres import ConnectionSettings, LocalPostgres
from tools.redis_server import LocalRedis

pytestmark = pytest.mark.integration
WORKERS = ("worker1", "worker2")
GRANULARITIES = ("node", "model", "layer", "project")  # project: the single-task DAG, the reference
HEARTBEAT_TIMEOUT = 30  # seconds; Airflow's default is 300 (README: "Several workers (Celery)")
PROBE_SCHEMA = "celery_probe_control"  # how long the lost-worker probe model sleeps
CLONED = re.compile(r"Cloning project to writable temp directory (\S+)")


def _with_probe(jaffle_project: Path, copy: Path) -> Path:
    """jaffle_shop plus a model that sleeps as long as the control table says, so that a worker
    can be lost while dbt runs, and the retry need not sleep."""
    shutil.copytree(jaffle_project, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (copy / "models" / "probe").mkdir()
    (copy / "models" / "probe" / "lost_worker_probe.sql").write_text(
        "{{ config(materialized='table') }}\n"
        f"with nap as (select pg_sleep(coalesce((select max(seconds) from {PROBE_SCHEMA}.sleep), 0)))\n"
        "select 1 as done from nap\n"
    )
    parse_project(copy)
    return copy


@pytest.fixture(scope="module")
def celery(
    jaffle_project: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings
) -> Iterator[LocalAirflow]:
    """Airflow on Celery with two workers. Its home is short (a unix socket path, which holds the
    warm dbt server's TMPDIR, has at most 107 bytes) and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="blueprint-celery-", dir=leaks.shared_temp_dir()))
    try:
        probe = _with_probe(jaffle_project, root / "jaffle_probe")
        postgres.query(f"create schema if not exists {PROBE_SCHEMA}")
        postgres.query(f"create table if not exists {PROBE_SCHEMA}.sleep (seconds int)")
        env = airflow_env(root / "airflow", load_settings(), postgres)
        env.update({
            **project_per_dag(jaffle_project, GRANULARITIES),
            **project_per_dag(probe, ("project",), prefix="lost"),
            "BLUEPRINT__DAGS__SCHEDULE": "null",
            "BLUEPRINT__DAGS__RETRIES": "1",
            "BLUEPRINT__DAGS__RETRY_DELAY_SECONDS": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        })  # fmt: skip
        metadata = postgres_server.database("airflow_celery")
        with LocalRedis(root / "redis") as redis:
            workers = CeleryWorkers(redis.url, WORKERS, concurrency=2)
            with LocalAirflow(root / "airflow", env, metadata, workers) as airflow:
                yield airflow
    finally:
        postgres.query(f"drop schema if exists {PROBE_SCHEMA} cascade")
        shutil.rmtree(root, ignore_errors=True)


def _report(airflow: LocalAirflow, run: RunResult) -> str:
    return f"{run}\n{airflow.failure_report(run.dag_id, run.run_id)}"


def _rows(postgres: ConnectionSettings, schema: str) -> dict[str, list[tuple]]:
    return {
        table: postgres.query(f"select * from {schema}.{table} order by 1")
        for table in ("customers", "orders")
    }  # fmt: skip


def _worker_of(airflow: LocalAirflow, clone: str) -> str:
    for name in WORKERS:
        if clone.startswith(f"{CeleryWorkers.tmpdir(airflow.home, name)}/"):
            return name
    raise AssertionError(f"{clone} is under no worker's TMPDIR")


def test_four_dags_at_once_on_two_workers(celery: LocalAirflow, postgres: ConnectionSettings) -> None:
    dag_ids = [f"celery_{granularity}_local" for granularity in GRANULARITIES]
    for dag_id in dag_ids:
        celery.wait_for_dag(dag_id)
    runs = [celery.wait(dag_id, run_id) for dag_id, run_id in [(d, celery.trigger(d)) for d in dag_ids]]
    assert [run.state for run in runs] == ["success"] * 4, "\n".join(_report(celery, run) for run in runs)

    # Same marts as the single-task DAG's, row for row, and as the generated data predicts.
    reference = _rows(postgres, "celery_project")
    assert actual_marts(postgres, "celery_project") == expected_marts(scale=1)
    for granularity in GRANULARITIES[:-1]:
        assert _rows(postgres, f"celery_{granularity}") == reference, f"celery_{granularity}_local's marts differ"

    # Every task's log is whole, and each task ran dbt in a project copy (with its target/) of its own.
    clones: dict[str, str] = {}
    for run in runs:
        for task_id in run.tasks:
            log = celery.task_log(run.dag_id, run.run_id, task_id)
            where = f"{run.dag_id}.{task_id}:\n{log[-3000:]}"
            found = CLONED.findall(log)
            assert len(found) == 1, f"expected one project copy in the log of {where}"
            assert f"--project-dir {found[0]}" in log.replace("', '", " "), f"dbt ran elsewhere than its copy: {where}"
            # Airflow opens each log with its Pre Execute group and closes it with the Post Execute one.
            summary = re.search(r"Done\. PASS=\d+ WARN=\d+ ERROR=0", log)
            assert summary, f"no dbt summary in {where}"
            assert '"event":"::group::Pre Execute"' in log.splitlines()[1], f"the start is missing in {where}"
            assert '"event":"::group::Post Execute"' in log[summary.end() :], f"the end is missing in {where}"
            clones[f"{run.dag_id}.{task_id}"] = found[0]
    assert len(set(clones.values())) == len(clones), f"tasks shared a dbt project folder: {clones}"

    # Both workers ran tasks, each with its own warm dbt server.
    by_worker = {
        name: sorted(task for task, clone in clones.items() if _worker_of(celery, clone) == name) for name in WORKERS
    }
    assert all(by_worker.values()), f"tasks did not spread over both workers: {by_worker}"
    for name in WORKERS:
        servers = [
            p
            for p in warm_dbt_processes(CeleryWorkers.tmpdir(celery.home, name))
            if "server.py" in " ".join(p.cmdline())
        ]
        assert len(servers) == 1, f"{name} should have its own warm dbt server, found {len(servers)}"


def _probe_queries(postgres: ConnectionSettings) -> list[tuple]:
    return postgres.query(
        "select pid, client_port from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
        "%lost_worker_probe%pg_sleep%",
    )


def _workers_running_the_probe(celery: LocalAirflow, postgres: ConnectionSettings) -> list[str]:
    """The workers whose warm dbt holds the probe's database connection. Matching the client port
    is exact; counting a worker's dbt processes is not (a server may hold a short-lived child)."""
    ports = {port for _, port in _probe_queries(postgres)}
    running = []
    for name in WORKERS:
        for process in warm_dbt_processes(CeleryWorkers.tmpdir(celery.home, name)):
            with contextlib.suppress(psutil.Error):
                if any(c.laddr and c.laddr.port in ports for c in process.net_connections(kind="tcp")):
                    running.append(name)
                    break
    return running


def _wait_for(condition, timeout: float, message: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(message())
        time.sleep(0.5)
    return time.monotonic() - start


def test_a_lost_worker_is_detected_and_its_task_retried_on_the_other(
    celery: LocalAirflow, postgres: ConnectionSettings
) -> None:
    postgres.query(f"delete from {PROBE_SCHEMA}.sleep")
    postgres.query(f"insert into {PROBE_SCHEMA}.sleep values (300)")
    dag_id, task_id = "lost_project_local", "dbt_build"
    celery.wait_for_dag(dag_id)
    run_id = celery.trigger(dag_id)
    _wait_for(
        lambda: _probe_queries(postgres), 180, lambda: f"the probe never ran\n{celery.failure_report(dag_id, run_id)}"
    )

    # The worker whose warm dbt runs the command is lost, as a machine would be.
    busy = _workers_running_the_probe(celery, postgres)
    assert len(busy) == 1, f"expected one worker running the probe, found {busy}"
    lost, survivor = busy[0], next(name for name in WORKERS if name != busy[0])
    celery.lose_worker(lost)
    postgres.query(f"update {PROBE_SCHEMA}.sleep set seconds = 0")

    # Its warm dbt server cancels the command whose caller vanished: the query and the dbt process end.
    _wait_for(lambda: not _probe_queries(postgres), 60, lambda: "the probe's query outlived its lost worker")
    lost_tmp = CeleryWorkers.tmpdir(celery.home, lost)
    _wait_for(
        lambda: not warm_dbt_commands(lost_tmp), 30,
        lambda: f"dbt still runs for the lost worker: {[p.cmdline() for p in warm_dbt_commands(lost_tmp)]}",
    )  # fmt: skip

    run = celery.wait(dag_id, run_id, timeout=300)
    assert run.state == "success", _report(celery, run)
    tries = celery.metadata.query(
        "select try_number from task_instance where dag_id = %s and run_id = %s and task_id = %s",
        dag_id,
        run_id,
        task_id,
    )
    assert tries == [(2,)], f"expected the task's second try to succeed, got {tries}\n{_report(celery, run)}"
    scheduler_log = (celery.service_logs / "scheduler.log").read_text(errors="replace")
    assert "Detected a task instance without a heartbeat" in scheduler_log, "the scheduler did not report the lost task"
    clones = CLONED.findall(celery.task_log(dag_id, run_id, task_id))
    assert [_worker_of(celery, clone) for clone in clones] == [lost, survivor], celery.task_log(
        dag_id, run_id, task_id
    )[-5000:]
    assert actual_marts(postgres, "lost_project") == expected_marts(scale=1)
