"""A real Airflow on this machine: API server, scheduler (LocalExecutor), triggerer and DAG processor;
or with `workers=CeleryWorkers(...)`, Airflow's CeleryExecutor and N named Celery workers.

`dag.test()` runs tasks one after another in one process and has no triggerer, so deferrable
sensors (the watcher mode's consumers) and parallel task slots behave differently there. Tests and
benchmarks that need the real thing use this: metadata in PostgreSQL (SQLite serialises writers),
every process on a project-local AIRFLOW_HOME, runs triggered with the CLI and timed from
Airflow's own start and end dates.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.airflow_db import migrate_metadata_db
from tools.celery_workers import CeleryWorkers, lose_worker, stop_warm_dbt
from tools.local_env import AIRFLOW_BIN
from tools.log_excerpts import error_lines, tail
from tools.postgres import ConnectionSettings, free_port
from tools.process_groups import signal_group, stop_groups

SERVICES = ("api-server", "scheduler", "triggerer", "dag-processor")
# The test stack's own settings, which a caller's environment may override (the scheduler
# benchmark measures Airflow's defaults with --env): a heartbeat each second for supervise()'s
# liveness check, new DAG files seen within 5 s.
STACK_DEFAULTS = {"AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5"}


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, str]


class LocalAirflow:
    def __init__(
        self, home: Path, env: dict[str, str], metadata: ConnectionSettings, workers: CeleryWorkers | None = None
    ) -> None:
        self.home = home
        self.port = free_port()
        self.workers = workers
        self.env = {**STACK_DEFAULTS, **env, **self._service_config(metadata)}
        if workers is not None:
            self.env.update(workers.airflow_config(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
        self.metadata = metadata
        self._processes: list[subprocess.Popen[bytes]] = []
        self._started: list[str] = []  # the service name of each process, in the same order
        self._up_since: dict[str, float] = {}  # service -> time.monotonic() it (re)started

    @property
    def services(self) -> tuple[str, ...]:
        """Every service this Airflow runs: SERVICES, then one `worker-<name>` per Celery worker."""
        workers = self.workers.names if self.workers is not None else ()
        return SERVICES + tuple(CeleryWorkers.service(name) for name in workers)

    def _service_config(self, metadata: ConnectionSettings) -> dict[str, str]:
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.sqlalchemy_url(),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Only the DAGs a caller triggers run (trigger() unpauses them): every other DAG of the
            # folder would start its scheduled run at once and build the same relations concurrently.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            # Every process must sign and check task tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__PORT": str(self.port),
            # The scheduler's and triggerer's log servers: two stacks at once (pytest -n) must not
            # both take Airflow's default ports, 8793 and 8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Loopback only: every caller of this API server is an admin (all_admins below).
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> LocalAirflow:
        self.start()  # stops what it started when it fails: __exit__ does not run then
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def service_logs(self) -> Path:
        return self.home / "service-logs"

    def start(self, timeout: float = 180) -> None:
        """Start every service and wait until the API server answers; on any failure (or Ctrl-C),
        stop what did start before raising, so no service outlives a failed start."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            migrate_metadata_db(self.env)
            self.service_logs.mkdir(exist_ok=True)
            for service, command, env in self._commands():
                self._processes.append(self._spawn(service, command, env))
                self._started.append(service)
                self._up_since[service] = time.monotonic()
            self._wait_until_healthy(timeout)
            self._wait_until_workers_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _commands(self) -> list[tuple[str, list[str], dict[str, str]]]:
        commands = []
        for service in SERVICES:
            command = [str(AIRFLOW_BIN / "airflow"), *service.split()]
            if service == "api-server":
                command += ["--port", str(self.port), "--host", "127.0.0.1"]
            commands.append((service, command, self.env))
        for name in self.workers.names if self.workers is not None else ():
            command = self.workers.command(AIRFLOW_BIN / "airflow", self.home, name)
            commands.append((CeleryWorkers.service(name), command, self.workers.env(self.env, self.home, name)))
        return commands

    def _spawn(self, service: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one service; its log is appended to, so a restarted service keeps its history."""
        with (self.service_logs / f"{service}.log").open("ab") as log:  # the child keeps its own copy
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _respawn(self, service: str) -> subprocess.Popen[bytes]:
        ((command, env),) = [(command, env) for name, command, env in self._commands() if name == service]
        return self._spawn(service, command, env)

    def service_pids(self) -> dict[str, int]:
        """Each running service's process id (the benchmarks read their CPU time from it)."""
        return {service: process.pid for service, process in zip(self._started, self._processes, strict=True)}

    def exited_services(self) -> dict[str, int]:
        """Each service whose process has exited, with its exit code."""
        return {
            service: process.returncode
            for service, process in zip(self._started, self._processes, strict=True)
            if process.poll() is not None
        }

    def supervise(self, heartbeat_timeout: float = 60) -> dict[str, str]:
        """What a process supervisor does (systemd, Kubernetes, Astro): start again every service
        that exited, and a scheduler that is alive but stuck, as a liveness probe on its heartbeat
        would (the Helm chart's `airflow jobs check`): its last heartbeat is older than
        `heartbeat_timeout` seconds while it has run at least that long. Returns each restarted
        service with why."""
        restarted = {service: f"exited with code {code}" for service, code in self.exited_services().items()}
        if "scheduler" not in restarted and time.monotonic() - self._up_since["scheduler"] > heartbeat_timeout:
            silent = self._seconds_since_scheduler_heartbeat()
            if silent is not None and silent > heartbeat_timeout:
                restarted["scheduler"] = f"no heartbeat for {silent:.0f} s"
        for service, why in restarted.items():
            index = self._started.index(service)
            signal_group(self._processes[index].pid, signal.SIGKILL)  # the process and what it started
            self._processes[index].wait(timeout=30)
            with (self.service_logs / f"{service}.log").open("ab") as log:
                log.write(f"\n--- restarted by the supervisor: {why}\n".encode())
            self._processes[index] = self._respawn(service)
            self._up_since[service] = time.monotonic()
        return restarted

    def _seconds_since_scheduler_heartbeat(self) -> float | None:
        """None while the metadata database cannot answer (a probe that cannot ask does not kill)."""
        import psycopg2

        try:
            rows = self._query(
                "select extract(epoch from now() - max(latest_heartbeat)) from job where job_type = 'SchedulerJob'"
            )
        except psycopg2.OperationalError:
            return None
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def stop(self) -> None:
        """SIGTERM each service's process group (its task processes with it), SIGKILL after 30 s."""
        stop_groups(self._processes, timeout=30)  # what a service started (a task's dbt) goes with it
        self._processes.clear()
        self._started.clear()
        self._up_since.clear()
        for name in self.workers.names if self.workers is not None else ():
            stop_warm_dbt(CeleryWorkers.tmpdir(self.home, name))  # each worker's own, in its own session

    def worker_pid(self, name: str) -> int:
        """The process (and process group) id of Celery worker `name`."""
        return self._processes[self._started.index(CeleryWorkers.service(name))].pid

    def lose_worker(self, name: str) -> list[int]:
        """SIGKILL Celery worker `name` and everything it runs, as a lost machine would end it
        (tools/celery_workers.lose_worker); its service log stays for the failure report."""
        return lose_worker(self.worker_pid(name))

    def _wait_until_workers_ready(self, timeout: float) -> None:
        """Celery prints `<name>@<host> ready.` once it consumes from the broker."""
        deadline = time.monotonic() + timeout
        for name in self.workers.names if self.workers is not None else ():
            log = self.service_logs / f"{CeleryWorkers.service(name)}.log"
            while not (log.exists() and re.search(rf"\b{name}@\S+ ready\.", log.read_text(errors="replace"))):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Celery worker {name} was not ready within {timeout:.0f} s\n{self.service_log_tails()}"
                    )
                time.sleep(1)

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [service for service, process in zip(self._started, self._processes, strict=True) if process.poll()]
            if dead:
                raise RuntimeError(f"airflow {', '.join(dead)} exited\n{self.service_log_tails()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2):
                    return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"the Airflow API server did not answer within {timeout:.0f} s\n{self.service_log_tails()}")

    # -- what a failing test prints ------------------------------------------------------------
    def service_log_tails(self, lines: int = 40) -> str:
        """The last `lines` lines of each service's log."""
        parts = []
        for service in self.services:
            path = self.service_logs / f"{service}.log"
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"--- airflow {service} (last {lines} lines of {path})\n" + tail(text, lines))
        return "\n".join(parts)

    def failure_report(self, dag_id: str, run_id: str | None = None, lines: int = 60) -> str:
        """What a reader needs when a run went wrong: the run's state and every task's, the log
        tail of each task that did not succeed, and the tail of each service's log."""
        parts = []
        if run_id is not None:
            try:
                runs = self._query("select state from dag_run where dag_id = %s and run_id = %s", dag_id, run_id)
                tasks = self._query(
                    "select task_id, coalesce(state, 'none') from task_instance where dag_id = %s and run_id = %s "
                    "order by task_id",
                    dag_id, run_id,
                )  # fmt: skip
            except Exception as error:  # the report must not hide the failure it reports
                runs, tasks = [], []
                parts.append(f"(could not read the metadata database: {error})")
            parts.append(f"=== {dag_id} run {run_id}: {runs[0][0] if runs else 'not found'}")
            parts += [f"    {task_id}: {state}" for task_id, state in tasks]
            logs = {
                task_id: self.task_log(dag_id, run_id, task_id) or "(no log file)"
                for task_id, state in tasks
                if state not in ("success", "skipped")
            }
            # The errors come first: a CI summary keeps the start of a long report.
            parts += [
                f"--- errors in {task_id}'s log\n{errors}"
                for task_id, log in logs.items()
                if (errors := error_lines(log))
            ]
            parts += [
                f"--- task {task_id}, last {lines} lines of its log\n{tail(log, lines)}"
                for task_id, log in logs.items()
            ]
        parts.append(self.service_log_tails())
        return "\n".join(parts)

    # -- runs --------------------------------------------------------------------------------
    def _query(self, sql: str, *params: object) -> list[tuple]:
        return self.metadata.query(sql, *params)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the DAG processor has serialised `dag_id` (so it can be triggered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._query("select 1 from serialized_dag where dag_id = %s", dag_id):
                return
            time.sleep(1)
        raise RuntimeError(f"{dag_id} was not parsed within {timeout:.0f} s\n{self.service_log_tails()}")

    def unpause(self, dag_id: str) -> None:
        self._api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> str:
        """Unpause `dag_id` and trigger a run (with `conf`, the trigger form's values, validated by Airflow)."""
        self.unpause(dag_id)
        run_id = f"manual__{dag_id}__{secrets.token_hex(4)}"
        command = [str(AIRFLOW_BIN / "airflow"), "dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            command += ["--conf", json.dumps(conf)]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"could not trigger {dag_id}: {result.stderr.strip()[-500:]}")
        return run_id

    def wait(self, dag_id: str, run_id: str, timeout: float = 900) -> RunResult:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self._query(
                "select state, extract(epoch from end_date - start_date) from dag_run "
                "where dag_id = %s and run_id = %s",
                dag_id, run_id,
            )  # fmt: skip
            if rows and rows[0][0] in ("success", "failed"):
                tasks = self._query(
                    "select task_id, state from task_instance where dag_id = %s and run_id = %s", dag_id, run_id
                )
                return RunResult(dag_id, run_id, rows[0][0], float(rows[0][1] or 0), dict(tasks))
            time.sleep(1)
        raise RuntimeError(
            f"{dag_id} run {run_id} did not finish within {timeout:.0f} s\n{self.failure_report(dag_id, run_id)}"
        )

    def first_run(self, dag_id: str, timeout: float = 300) -> str:
        """The run_id of the first run of `dag_id` (e.g. one the scheduler started on assets)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self._query("select run_id from dag_run where dag_id = %s order by id limit 1", dag_id)
            if rows:
                return rows[0][0]
            time.sleep(1)
        raise RuntimeError(f"{dag_id} did not start within {timeout:.0f} s\n{self.failure_report(dag_id)}")

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every attempt's log of a task instance, in order (what a failing test should print)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(f"--- {path.name}\n{path.read_text()}" for path in sorted(folder.glob("*.log")))

    def run_spans(self, dag_id: str) -> dict[str, tuple[float, float]]:
        """run_id -> (start, end) in epoch seconds, for the finished runs of a DAG."""
        rows = self._query(
            "select run_id, extract(epoch from start_date), extract(epoch from end_date) from dag_run "
            "where dag_id = %s and end_date is not null",
            dag_id,
        )
        return {run_id: (float(start), float(end)) for run_id, start, end in rows}

    def clear(self, dag_id: str, run_id: str, task_ids: list[str], downstream: bool = True) -> list[str]:
        """Clear task instances of a run (and their downstream tasks), as the UI's Clear does; the
        REST API takes exact task ids (the CLI's --task-regex matches substrings in Airflow 3.3)."""
        body = {"dag_run_id": run_id, "task_ids": task_ids, "include_downstream": downstream, "dry_run": False}
        cleared = self._api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)["task_instances"]
        return sorted(ti["task_id"] for ti in cleared)

    def _api(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        base = f"http://127.0.0.1:{self.port}"
        with urllib.request.urlopen(f"{base}/auth/token", timeout=30) as response:  # all users are admins here
            token = json.load(response)["access_token"]
        request = urllib.request.Request(
            base + path, data=json.dumps(body).encode() if body is not None else None, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def run(self, dag_id: str, timeout: float = 900) -> RunResult:
        """Trigger a run of `dag_id` and wait for it (`failure_report(dag_id, result.run_id)` says why it failed)."""
        self.wait_for_dag(dag_id)
        return self.wait(dag_id, self.trigger(dag_id), timeout)
