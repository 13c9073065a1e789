"""Celery workers for LocalAirflow: Airflow's CeleryExecutor on this machine, N named workers.

Each worker is its own `airflow celery worker` process group with its own TMPDIR. The warm dbt
server keeps its socket under tempfile.gettempdir() and Cosmos copies the project into a
temporary folder per task, so a TMPDIR per worker gives each worker its own warm dbt, as separate
machines would have, and every task's dbt folder names the worker it ran on.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

WARM_DBT_SERVER = "warm_dbt/server.py"
SOCKET_PATH_LIMIT = 107  # bytes of a unix socket path on Linux (108 with the terminating NUL)


@dataclass(frozen=True)
class CeleryWorkers:
    broker_url: str  # redis://127.0.0.1:<port>/0 (tools/redis_server.py)
    names: tuple[str, ...] = ("worker1", "worker2")
    concurrency: int = 2  # task slots per worker

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names) or not all(name.isidentifier() for name in self.names):
            raise ValueError(f"worker names must be distinct identifiers, got {self.names}")

    def airflow_config(self, metadata_url: str) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            # Celery's task results next to Airflow's metadata (sqlalchemy URL with Celery's db+ prefix).
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
        }

    @staticmethod
    def service(name: str) -> str:
        return f"worker-{name}"

    @staticmethod
    def tmpdir(home: Path, name: str) -> Path:
        return home / "workers" / name / "tmp"

    def command(self, airflow: Path, home: Path, name: str) -> list[str]:
        # The log server is skipped: both workers share this machine and AIRFLOW_HOME (logs/), and
        # would both bind [logging] worker_log_server_port. Each worker needs its own pid file.
        return [
            str(airflow), "celery", "worker", "--celery-hostname", f"{name}@%h",
            "--concurrency", str(self.concurrency), "--skip-serve-logs", "--without-mingle", "--without-gossip",
            "--pid", str(home / "workers" / name / "worker.pid"),
        ]  # fmt: skip

    def env(self, base: dict[str, str], home: Path, name: str) -> dict[str, str]:
        tmpdir = self.tmpdir(home, name)
        # The warm dbt socket, <TMPDIR>/warm-dbt-<uid>/<20 hex>.sock, must fit a unix socket path;
        # longer, each dbt command would quietly start cold.
        if len(f"{tmpdir}/warm-dbt-{os.getuid()}/{'0' * 20}.sock".encode()) > SOCKET_PATH_LIMIT:
            raise ValueError(f"{home} is too deep for the workers' warm dbt sockets: use a shorter Airflow home")
        tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return {**base, "TMPDIR": str(tmpdir)}


def lose_worker(pid: int) -> list[int]:
    """SIGKILL a worker as a lost machine would end it: its own process group and the group of
    every process under it (Airflow's supervisor puts each task in a group of its own, and Cosmos
    starts dbt in a session of its own, so the worker's group alone would leave both running).
    Warm dbt servers are spared: they run in a session of their own by design and must themselves
    cancel a command whose caller vanished. Returns the process groups killed."""
    try:
        leader = psutil.Process(pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    spared: set[int] = set()
    for process in tree:
        with contextlib.suppress(psutil.Error):
            if any(argument.endswith(WARM_DBT_SERVER) for argument in process.cmdline()):
                spared |= {process.pid, *(child.pid for child in process.children(recursive=True))}
    groups = []
    for process in tree:
        if process.pid in spared:
            continue
        with contextlib.suppress(ProcessLookupError):
            group = os.getpgid(process.pid)
            if group not in groups:
                groups.append(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return groups


def warm_dbt_processes(tmpdir: Path) -> list[psutil.Process]:
    """The warm dbt servers whose socket lives under `tmpdir` (a worker's), with their dbt commands."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if any(argument.endswith(WARM_DBT_SERVER) for argument in command) and str(tmpdir) in " ".join(command):
            found.append(process)
            with contextlib.suppress(psutil.Error):
                found += process.children(recursive=True)
    return found


def warm_dbt_commands(tmpdir: Path) -> list[psutil.Process]:
    """The dbt commands a worker's warm dbt server runs: its forks, which keep its command line
    (its other children, such as multiprocessing's resource tracker, live as long as it does)."""
    processes = warm_dbt_processes(tmpdir)
    servers = [p for p in processes if p.ppid() not in {other.pid for other in processes}]
    commands = []
    for server in servers:
        with contextlib.suppress(psutil.Error):
            commands += [child for child in server.children(recursive=True) if child.cmdline() == server.cmdline()]
    return commands


def stop_warm_dbt(tmpdir: Path, timeout: float = 15) -> None:
    """Stop a worker's warm dbt server (it outlives its tasks by design, until idle for 10 minutes)."""
    processes = warm_dbt_processes(tmpdir)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def project_per_dag(project_dir: Path, granularities: tuple[str, ...], prefix: str = "celery") -> dict[str, str]:
    """Settings registering `project_dir` once per granularity, as project <prefix>_<granularity>
    with one DAG (<prefix>_<granularity>_local) building into a schema of the same name; the
    blueprint's own jaffle_shop DAGs are hidden. DAGs of one project share its target schema and
    would race on its relations when they run at once; these never do."""
    env = {"BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED": "false"}
    for granularity in granularities:
        name = f"{prefix}_{granularity}"
        env[f"BLUEPRINT__PROJECTS__{name.upper()}"] = (
            f"{{project_dir: '{project_dir}', profile: jaffle_shop, target_schema: {name},"
            f" dags: [{{id: '{{project}}_{{mode}}', granularity: {granularity}}}]}}"
        )
    return env
