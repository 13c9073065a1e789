"""Where a benchmarked DAG run's time went, per task: dbt's phases read from each task's JSON log
(Cosmos's subprocess hook, then dbt's own lines), and the per-run table the scheduler benchmark
prints (tools/bench/scheduler.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

from tools.bench import common

# Log lines that mark dbt's progress inside a task: Cosmos's subprocess hook, then dbt's own output.
DBT_MARKS = (
    ("command", "Running command:"),
    ("dbt_started", "Running with dbt="),
    ("parsed", "Found "),
    ("finished", "Finished running"),
    ("exited", "Command exited with return code"),
)
PHASES = (  # (name, from mark, to mark)
    ("before_dbt", "log_start", "command"),
    ("dbt_startup", "command", "dbt_started"),
    ("dbt_parse", "dbt_started", "parsed"),
    ("dbt_nodes", "parsed", "finished"),
    ("dbt_exit", "finished", "exited"),
    ("after_dbt", "exited", "log_end"),
    ("dbt_total", "command", "exited"),
)


def dbt_timing(log_text: str) -> dict[str, Any]:
    """Where a task's time went, from its JSON log: the seconds of each phase around the first dbt
    command (start-up is dbt's imports until its first line; parse until "Found N models"), and
    whether dbt parsed the project in full ("Unable to do partial parsing")."""
    marks: dict[str, float] = {}
    full_parse = False
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
            stamp = dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        event = str(record.get("event", ""))
        marks.setdefault("log_start", stamp)
        marks["log_end"] = stamp
        for mark, text in DBT_MARKS:
            if mark not in marks and text in event and ("command" in marks or mark == "command"):
                marks[mark] = stamp
        full_parse = full_parse or "Unable to do partial parsing" in event
    timing: dict[str, Any] = {
        name: round(marks[end] - marks[start], 3) for name, start, end in PHASES if start in marks and end in marks
    }
    if "command" in marks:
        timing["full_parse"] = full_parse
    return timing if "command" in marks else {}


def first_errors(log: Path, limit: int = 3) -> list[str]:
    """The first error-level events of a task log, shortened."""
    events = []
    for line in log.read_text().splitlines() if log.exists() else []:
        with contextlib.suppress(ValueError, AttributeError):
            record = json.loads(line)
            if record.get("level") == "error" and len(events) < limit:
                events.append(str(record.get("event", ""))[-400:])
    return events


def breakdown(tasks: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Per task and in total: queued->start latency, duration, and dbt's phases where it ran dbt."""
    rows = []
    for task in tasks:
        queued, start, end = task.get("queued_dttm"), task.get("start_date"), task.get("end_date")
        row = {"task_id": task["task_id"], "state": task.get("state"), "queued": queued, "start": start}
        if start is not None and end is not None:
            row["duration"] = round(end - start, 3)
        # A deferred task is queued again when its trigger fires: queued after it started.
        if queued is not None and start is not None and queued <= start:
            row["queued_to_start"] = round(start - queued, 3)
        row.update({name: task[name] for name, *_ in PHASES if name in task})
        row["full_parse"] = task.get("full_parse")
        rows.append(row)
    spans = [(row["start"], row["start"] + row["duration"]) for row in rows if "duration" in row]
    totals = {
        "run": seconds,
        "no_task_running": round(seconds - common.busy_seconds(spans), 3),
        "dbt_full_parses": sum(1 for row in rows if row["full_parse"]),
    }
    for name in ("queued_to_start", "duration", *(name for name, *_ in PHASES)):
        values = [row[name] for row in rows if row.get(name) is not None]
        if values:
            totals[f"sum_{name}"] = round(sum(values), 3)
    return {"tasks": rows, "totals": totals}


def format_breakdown(result: dict[str, Any]) -> str:
    columns = ["queued", "start", "queued_to_start", "duration", *(name for name, *_ in PHASES)]
    rows = [
        [row["task_id"] + (" (full parse)" if row["full_parse"] else "")]
        + [common.format_seconds(row.get(column)) for column in columns]
        for row in result["tasks"]
    ]
    totals = result["totals"]
    rows.append(["sum", "", "", *(common.format_seconds(totals.get(f"sum_{column}")) for column in columns[2:])])
    headers = ["task", "queued at", "start at", "queued->start", "duration", "before dbt", "dbt start-up", "dbt parse"]
    headers += ["dbt nodes", "dbt exit", "after dbt", "dbt total"]
    idle = f"no task running for {totals['no_task_running']:.1f} s of {totals['run']:.1f} s"
    return common.format_table(headers, rows) + f"\n{idle}; dbt full parses: {totals['dbt_full_parses']}"
