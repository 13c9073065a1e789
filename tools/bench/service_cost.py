"""What the scheduler benchmark's Airflow costs while it runs DAGs and while it waits for work: the
CPU seconds of each service's process (psutil, user + system) and the metadata database's load
(PostgreSQL's pg_stat_database counters for Airflow's database), as deltas between two samples,
per minute and per DAG run. Scheduling settings that shorten the gaps between tasks are paid here.

The scheduler's own process runs the scheduling loop; `scheduler+executor` adds what it forked and
still runs (the LocalExecutor's workers, each supervising its tasks, whose CPU it has collected).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tools.bench import common

DB_COUNTERS = ("xact_commit", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted")
EXECUTOR = "scheduler+executor"


@dataclass(frozen=True)
class CostSample:
    at: float  # time.monotonic()
    cpu: dict[str, float] = field(default_factory=dict)  # service -> CPU seconds
    db: dict[str, int] = field(default_factory=dict)  # pg_stat_database counter -> value


def process_cpu(pid: int, with_children: bool = False) -> float:
    """User + system CPU seconds of a process; with its live descendants and what they reaped."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)] if with_children else [root]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:  # ended between the listing and now
            continue
        total += times.user + times.system
        if with_children:  # descendants already reaped (a finished task's process)
            total += times.children_user + times.children_system
    return total


def database_counters(airflow: Any) -> dict[str, int]:
    """Airflow's metadata database's counters (PostgreSQL flushes them about once a second)."""
    columns = ", ".join(DB_COUNTERS)
    rows = airflow._query(f"select {columns} from pg_stat_database where datname = current_database()")
    return dict(zip(DB_COUNTERS, (int(value) for value in rows[0]), strict=True))


def sample(airflow: Any) -> CostSample:
    """Every service's CPU seconds and the metadata database's counters now."""
    pids = airflow.service_pids()
    cpu = {service: process_cpu(pid) for service, pid in pids.items()}
    if "scheduler" in pids:
        cpu[EXECUTOR] = process_cpu(pids["scheduler"], with_children=True)
    return CostSample(time.monotonic(), cpu, database_counters(airflow))


def delta(before: CostSample, after: CostSample, runs: int = 0) -> dict[str, Any]:
    """Per minute (and per run when `runs`) between two samples."""
    minutes = max(after.at - before.at, 1e-9) / 60
    cpu = {service: after.cpu[service] - before.cpu.get(service, 0.0) for service in after.cpu}
    db = {counter: after.db[counter] - before.db[counter] for counter in DB_COUNTERS}
    result: dict[str, Any] = {
        "minutes": round(minutes, 3),
        "runs": runs,
        "cpu_seconds_per_minute": {service: round(value / minutes, 2) for service, value in cpu.items()},
        "db_per_minute": {counter: round(value / minutes) for counter, value in db.items()},
    }
    if runs:
        result["cpu_seconds_per_run"] = {service: round(value / runs, 2) for service, value in cpu.items()}
        result["db_per_run"] = {counter: round(value / runs) for counter, value in db.items()}
    return result


def idle_cost(airflow: Any, seconds: float, settle: float = 5) -> dict[str, Any] | None:
    """The cost of `seconds` with no run (after `settle` seconds for the last run's tasks to end)."""
    if seconds <= 0:
        return None
    time.sleep(settle)
    before = sample(airflow)
    time.sleep(seconds)
    return delta(before, sample(airflow))


def format_cost(cost: dict[str, Any]) -> str:
    """One row per phase (runs, idle): CPU seconds per minute of each service, database load per minute."""
    phases = [(name, cost[name]) for name in ("runs", "idle") if cost.get(name)]
    services = list(phases[0][1]["cpu_seconds_per_minute"]) if phases else []
    headers = ["phase", "min", *(f"{service} CPU s/min" for service in services), "commits/min", "rows read/min"]
    rows = []
    for name, phase in phases:
        db = phase["db_per_minute"]
        row = [name, f"{phase['minutes']:.1f}"]
        row += [f"{phase['cpu_seconds_per_minute'][service]:.2f}" for service in services]
        rows.append([*row, str(db["xact_commit"]), str(db["tup_returned"] + db["tup_fetched"])])
    return common.format_table(headers, rows)
