"""Run artifacts: what each dbt task ran, kept per DAG run and try, and summed up in its log.

Cosmos's local-like operators (local and virtualenv tasks, the watcher's producer, layer and
project `dbt build` tasks) run dbt in a temporary copy of the project that is deleted when the
command ends; they call their `callback` after the command, failed ones too, before raising.
`KeepArtifacts` is such a callback (alerts.py adds another). It copies

    <location>/<dag_id>/<run_id>/<task_id>/try_<n>/{run_results.json, manifest.json, dbt.log}

through an fsspec filesystem: a local folder, or object storage opened by Airflow's
ObjectStoragePath with the connection of `artifacts.conn_id`. Cosmos's own upload helpers
(cosmos.io) copy the whole target/ folder (every compiled and run SQL file) and no dbt.log, to the
one location of Airflow's `[cosmos] remote_target_path`, so they are not used here.

Before each upload, the runs of the same DAG whose newest artifact is older than
`retention_days` are deleted. The summary of what dbt ran is the last thing the callback logs,
so it ends the log of a successful task and comes right before Cosmos's error on a failed one.
Keeping artifacts never changes a task's outcome: a location that cannot be written costs one
warning line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.blueprint.artifact_settings import ArtifactSettings
from include.blueprint.storage import filesystem

log = logging.getLogger(__name__)

# name kept -> where dbt writes it in the project copy (dbt.log collects every command of the task;
# manifest.json is the DAG's render-time one, which Cosmos copies there, until dbt writes its own)
ARTIFACTS = {"run_results.json": "target/run_results.json", "manifest.json": "target/manifest.json",
             "dbt.log": "logs/dbt.log"}  # fmt: skip
FAILED = ("error", "fail", "runtime error")
# dbt's statuses in the order the summary counts them; any other status (no-op...) follows.
COUNTED = {"success": "success", "pass": "pass", "warn": "warn", "error": "error", "fail": "fail", "skipped": "skip"}
MESSAGE_CHARS = 300
# What libpq and PostgreSQL say when the server went away under a command (a restart, a failover,
# the network): no fault of the model, so the summary says so in one line the on-call reads first.
LOST_CONNECTION = (
    "server closed the connection unexpectedly", "terminating connection due to administrator command",
    "the database system is shutting down", "the database system is starting up",
    "the database system is in recovery mode", "connection refused", "connection already closed",
    "ssl connection has been closed unexpectedly", "could not receive data from server",
)  # fmt: skip
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_run_results(project_dir: str | Path) -> list[dict[str, Any]] | None:
    """The results of the dbt command just run, or None when dbt stopped before writing them."""
    try:
        return json.loads((Path(project_dir) / "target" / "run_results.json").read_text())["results"]
    except Exception:  # missing or half-written: dbt failed before running a node
        return None


def compiled_paths(manifest: Mapping[str, Any], unique_ids: list[str]) -> dict[str, str]:
    """unique id -> the compiled SQL, relative to the project (dbt's own `compiled_path`)."""
    nodes = manifest.get("nodes", {})
    paths = {}
    for unique_id in unique_ids:
        node = nodes.get(unique_id) or {}
        if node.get("compiled_path"):
            paths[unique_id] = node["compiled_path"]
    return paths


def summary_lines(results: list[dict[str, Any]], compiled: Mapping[str, str]) -> list[str]:
    """One line of counts, then one line per failed node: unique id, dbt's first message line,
    the relation and the compiled SQL."""
    counts = Counter(str(result.get("status")) for result in results)
    shown = [f"{counts.pop(status, 0)} {label}" for status, label in COUNTED.items()]
    shown += [f"{number} {status}" for status, number in sorted(counts.items())]
    lines = [f"dbt summary: {len(results)} node(s): {', '.join(shown)}"]
    lost = lost_connection_line(results)
    if lost:
        lines.append(lost)
    for result in results:
        if result.get("status") not in FAILED:
            continue
        unique_id = result.get("unique_id", "?")
        message = _headline(result.get("message") or "") or "no message"
        where = [f"relation {result['relation_name']}"] if result.get("relation_name") else []
        where.append(f"compiled SQL {compiled.get(unique_id, 'not compiled')}")
        lines.append(f"dbt {result['status']}: {unique_id}: {message} ({'; '.join(where)})")
    return lines


def lost_connection_line(results: list[dict[str, Any]]) -> str | None:
    """One line when nodes failed because the warehouse connection was lost, naming them."""
    lost, reason = [], ""
    for result in results:
        message = _ANSI.sub("", str(result.get("message") or "")).lower()
        cause = next((text for text in LOST_CONNECTION if text in message), None)
        if result.get("status") in FAILED and cause:
            lost.append(str(result.get("unique_id", "?")))
            reason = reason or cause
    if not lost:
        return None
    return (
        f"warehouse connection lost ({reason}) in {', '.join(lost)}: the warehouse restarted or the network "
        "dropped; dbt's open transaction was rolled back, and the task's retry runs it again"
    )


def _headline(text: str) -> str:
    """dbt's first message line; for "Database Error in model x (path)", which names no cause,
    the cause on the next line too."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    if not lines:
        return ""
    headline = lines[0]
    if headline.startswith(("Database Error in", "Runtime Error in")) and len(lines) > 1:
        headline = f"{headline}: {lines[1]}"
    return headline[:MESSAGE_CHARS]


def try_path(context: Mapping[str, Any]) -> str:
    """<dag_id>/<run_id>/<task_id>/try_<n>: one task try's place under the location."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/try_{ti.try_number}"


def _modified(info: Mapping[str, Any]) -> float | None:
    """When an object was last written, as the filesystems of fsspec report it (local: mtime,
    s3fs: LastModified, adlfs: last_modified, gcsfs: updated)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def sweep(fs: Any, dag_root: str, retention_days: int, now: float) -> list[str]:
    """Delete the runs under `dag_root` whose newest artifact is older than `retention_days`;
    the run ids deleted. One listing of the DAG's folder, however many runs it holds."""
    try:
        found = fs.find(dag_root, detail=True)
    except FileNotFoundError:
        return []
    cutoff = now - retention_days * 86400
    newest: dict[str, float] = {}
    for path, info in found.items():
        relative = str(path).removeprefix(dag_root.rstrip("/") + "/")
        if relative == str(path) or "/" not in relative:
            continue  # not inside a run folder
        run = relative.split("/", 1)[0]
        when = _modified(info)
        newest[run] = max(newest.get(run, 0.0), now if when is None else when)
    removed = []
    for run, when in sorted(newest.items()):
        if when >= cutoff:
            continue
        try:
            fs.rm(f"{dag_root}/{run}", recursive=True)
        except FileNotFoundError:  # another task of this DAG swept it first
            continue
        removed.append(run)
    return removed


def keep(artifacts: ArtifactSettings, project_dir: Path, context: Mapping[str, Any], now: float) -> str:
    """Copy the artifacts of one task try; where they went, as the location names it."""
    fs, root = filesystem(artifacts)
    dag_root = f"{root}/{context['ti'].dag_id}"
    if artifacts.retention_days:
        removed = sweep(fs, dag_root, artifacts.retention_days, now)
        if removed:
            log.info("dbt artifacts: deleted %d run(s) older than %d days", len(removed), artifacts.retention_days)
    target = f"{root}/{try_path(context)}"
    fs.makedirs(target, exist_ok=True)
    kept = []
    for name, relative in ARTIFACTS.items():
        source = project_dir / relative
        if source.is_file():
            fs.put_file(str(source), f"{target}/{name}")
            kept.append(name)
    missing = sorted(set(ARTIFACTS) - set(kept))
    where = f"{artifacts.location.rstrip('/')}/{try_path(context)}"
    return where + (f" (not written by dbt: {', '.join(missing)})" if missing else "")


@dataclass(frozen=True)
class KeepArtifacts:
    """The Cosmos callback: keep this try's artifacts, then log the summary of what dbt ran."""

    artifacts: ArtifactSettings

    def __call__(self, project_dir: str, context: Mapping[str, Any] | None = None, **_: Any) -> None:
        if context is None:
            return
        project = Path(project_dir)
        try:
            log.info("dbt artifacts kept in %s", keep(self.artifacts, project, context, time.time()))
        except Exception as error:  # keeping artifacts never changes the task's outcome
            reason = " ".join(str(error).split())[:MESSAGE_CHARS]
            log.warning("dbt artifacts not kept in %s: %s: %s", self.artifacts.location, type(error).__name__, reason)
        results = read_run_results(project)
        if results is None:
            log.info("dbt summary: no run_results.json (dbt stopped before running any node)")
            return
        failed = [result["unique_id"] for result in results if result.get("status") in FAILED]
        for line in summary_lines(results, _compiled_paths(project, failed)):
            log.info("%s", line)


def _compiled_paths(project_dir: Path, unique_ids: list[str]) -> dict[str, str]:
    if not unique_ids:
        return {}  # no need to read a manifest of many megabytes
    try:
        manifest = json.loads((project_dir / "target" / "manifest.json").read_text())
    except Exception:
        return {}
    return compiled_paths(manifest, unique_ids)


def attach(dag: Any, artifacts: ArtifactSettings) -> None:
    """The artifact keeper on every dbt task of `dag` that runs dbt on this worker."""
    from include.blueprint.cosmos_configs import add_dbt_callback

    if artifacts.enabled:
        add_dbt_callback(dag, KeepArtifacts(artifacts))
