"""The Celery worker helpers (tools/celery_workers.py) and the Redis helper's refusal, without a broker:
the settings each worker gets, the refusals, and that a lost worker takes its whole tree along."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from include.blueprint.settings import load_settings
from tests import leaks
from tools import redis_server
from tools.bench import celery as bench_celery
from tools.celery_workers import CeleryWorkers, lose_worker, project_per_dag


@pytest.fixture
def short_home() -> Iterator[Path]:
    """pytest's tmp_path is too deep for a worker's warm dbt socket (the refusal tested below)."""
    home = Path(tempfile.mkdtemp(prefix="blueprint-unit-celery-", dir=leaks.shared_temp_dir()))  # short: sockets
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_workers_get_the_celery_executor_their_own_tmpdir_and_pid_file(short_home: Path) -> None:
    tmp_path = short_home
    workers = CeleryWorkers("redis://127.0.0.1:1/0", ("a", "b"), concurrency=3)
    config = workers.airflow_config("postgresql+psycopg2://u:p@h:5/airflow")
    assert config["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert config["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://u:p@h:5/airflow"
    assert config["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    envs = [workers.env({"X": "1"}, tmp_path, name) for name in workers.names]
    assert [env["TMPDIR"] for env in envs] == [str(tmp_path / "workers" / n / "tmp") for n in ("a", "b")]
    assert all(Path(env["TMPDIR"]).is_dir() and env["X"] == "1" for env in envs)
    commands = [workers.command(Path("airflow"), tmp_path, name) for name in workers.names]
    assert [c[c.index("--pid") + 1] for c in commands] == [str(tmp_path / "workers" / n / "worker.pid") for n in "ab"]
    assert all("--skip-serve-logs" in command for command in commands)


def test_workers_refuse_duplicate_names_and_a_home_too_deep_for_warm_dbt(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct"):
        CeleryWorkers("redis://x", ("a", "a"))
    with pytest.raises(ValueError, match="too deep for the workers' warm dbt sockets"):
        CeleryWorkers("redis://x").env({}, tmp_path / ("d" * 80), "worker1")


def test_one_project_per_dag_gives_each_dag_its_own_schema(tmp_path: Path) -> None:
    env = project_per_dag(Path("/repo/dbt/jaffle_shop"), ("node", "project"))
    config = load_settings({**env, "BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED": env[next(iter(env))]})
    projects = {name: p for name, p in config.projects.items() if p.enabled}
    assert {name: p.target_schema for name, p in projects.items()} == {
        "celery_node": "celery_node",
        "celery_project": "celery_project",
    }
    assert [d.granularity for d in projects["celery_node"].dags] == ["node"]
    assert yaml.safe_load(env["BLUEPRINT__PROJECTS__CELERY_PROJECT"])["project_dir"] == "/repo/dbt/jaffle_shop"


def test_a_lost_worker_takes_processes_in_groups_of_their_own_along(tmp_path: Path) -> None:
    """A worker whose child started a grandchild in a session of its own (as Cosmos starts dbt)."""
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not psutil.Process(worker.pid).children() and time.monotonic() < deadline:
            time.sleep(0.1)
        tree = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        assert len(tree) == 2, f"the fake worker did not start its child: {tree}"
        groups = lose_worker(worker.pid)
        assert len(groups) == 2, f"expected the worker's group and its child's session, got {groups}"
        _, alive = psutil.wait_procs(tree, timeout=15)
        assert not alive, f"still running after the worker was lost: {alive}"
    finally:
        for process in psutil.Process(worker.pid).children(recursive=True) if psutil.pid_exists(worker.pid) else []:
            process.kill()
        worker.kill()
        worker.wait()


def test_without_redis_the_error_is_the_scripts_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "ensure-redis.sh"
    script.write_text("echo 'ensure-redis: trying' >&2\necho 'error: no redis-server: install Redis' >&2\nexit 1\n")
    monkeypatch.setattr(redis_server, "ENSURE_SCRIPT", script)
    with pytest.raises(RuntimeError, match=r"^error: no redis-server: install Redis$"):
        redis_server.redis_server_binary()


def test_the_benchmark_refuses_odd_slots() -> None:
    with pytest.raises(SystemExit):
        bench_celery.parse_args(["--slots", "3"])
    assert bench_celery.parse_args([]).slots == 4
