"""A client of Airflow 3's public REST API (/api/v2), for servers where every user is an admin (the
local stack and the test harness listen on loopback with SimpleAuthManager's all-admins): trigger a
DAG the way the UI does and wait for the run, read import errors, task states and task logs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

FINISHED = ("success", "failed")


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str]


class AirflowApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.base_url}/auth/token", timeout=30) as response:
            token = json.load(response)["access_token"]
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode() if body is not None else None, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: HTTP {error.code}: {error.read().decode()[:500]}") from None
        return json.loads(text) if text.strip().startswith(("{", "[")) else {"text": text}

    def import_errors(self) -> dict[str, str]:
        """file -> stack trace, for every DAG file that failed to import."""
        errors = self.call("GET", "/api/v2/importErrors")["import_errors"]
        return {error["filename"]: error["stack_trace"] for error in errors}

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.call("GET", "/api/v2/dags?limit=1000")["dags"]}

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the DAG processor has parsed `dag_id`; name any import error on the way out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dag_id in self.dag_ids():
                return
            time.sleep(2)
        raise RuntimeError(f"{dag_id} was not parsed within {timeout:.0f} s; import errors: {self.import_errors()}")

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> str:
        """Unpause `dag_id` and trigger a run, as the UI's Trigger button does; returns its run id."""
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 600) -> DagRun:
        quoted = urllib.parse.quote(run_id, safe="")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")["state"]
            if state in FINISHED:
                instances = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")
                tasks = {ti["task_id"]: ti["state"] for ti in instances["task_instances"]}
                return DagRun(dag_id, run_id, str(state), tasks)
            time.sleep(2)
        raise RuntimeError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        content = self.call("GET", path).get("content", [])
        if isinstance(content, list):
            return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line) for line in content)
        return str(content)
