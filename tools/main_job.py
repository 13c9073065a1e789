"""`make run`: the jaffle_shop pipeline through Airflow, end to end, on local defaults.

1. a PostgreSQL: the embedded one under .local/postgres, or yours when POSTGRES_HOST is set;
2. the generated raw data (--scale, default 1) as dbt seeds, and a fresh manifest;
3. a project-local AIRFLOW_HOME (.local/airflow) with SQLite metadata;
4. the Cosmos DAG `jaffle_shop_local` run to completion with `dag.test()`;
5. a summary: task states, and the marts' row counts against what the data implies.
Everything is reused on the next run. Problems stop it with one line naming the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest
from include.blueprint.settings import BlueprintConfigError, Settings, load_settings
from tools import generate_data
from tools.local_env import AIRFLOW_BIN, DEFAULT_EMBEDDED_PORT, LOCAL_DIR, REPO_ROOT, airflow_env, migrate_metadata_db
from tools.manifest import parse_project
from tools.postgres import ConnectionSettings, LocalPostgres, PostgresError, wait_until_reachable

DAG_ID = "jaffle_shop_local"
REQUIRED_WHEN_EXTERNAL = ("POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DATABASE")


class MainJobError(RuntimeError):
    """A problem the user can fix; printed as one line, without a traceback."""


def _port_from_env() -> int:
    raw = os.environ.get("POSTGRES_PORT", str(DEFAULT_EMBEDDED_PORT))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise MainJobError(f"POSTGRES_PORT={raw!r} is not a port number (1-65535)")
    return int(raw)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def database() -> tuple[ConnectionSettings, str]:
    """The user's PostgreSQL when POSTGRES_HOST is set, else the embedded one."""
    port = _port_from_env()
    if os.environ.get("POSTGRES_HOST"):
        missing = [name for name in REQUIRED_WHEN_EXTERNAL if not os.environ.get(name)]
        if missing:
            raise MainJobError(
                f"POSTGRES_HOST is set, so the run uses your server, but {', '.join(missing)} "
                "is not set: export it, or unset POSTGRES_HOST to use the embedded server"
            )
        settings = ConnectionSettings(
            host=os.environ["POSTGRES_HOST"],
            port=port,
            user=os.environ["POSTGRES_USER"],
            password=os.environ["POSTGRES_PASSWORD"],
            database=os.environ["POSTGRES_DATABASE"],
        )
        return settings, f"your PostgreSQL at {settings.host}:{settings.port}"
    server = LocalPostgres(LOCAL_DIR / "postgres", port)
    settings = server.start()
    return settings, f"embedded PostgreSQL on 127.0.0.1:{port} (data in {_shown(server.root)})"


def prepare_project(config: Settings, scale: int) -> None:
    generate_data.generate(config.dbt.project_dir / "seeds", scale=scale)
    try:
        require_fresh_manifest(config.dbt.project_dir, config.dbt.manifest_path)
    except ManifestNotReady:
        print("main job: dbt parse (the manifest is missing or stale)")
        parse_project(config.dbt.project_dir, config.dbt.executable)


def run_dag(env: dict[str, str]) -> dict[str, object]:
    log_path = LOCAL_DIR / "main-job.log"
    print(f"main job: running {DAG_ID} with `dag.test()` (logs: {_shown(log_path)})")
    with log_path.open("w") as log:
        result = subprocess.run(
            [str(AIRFLOW_BIN / "python"), "-m", "tools.run_dag", DAG_ID],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise MainJobError(f"the DAG run ended without a summary; see {log_path}") from None


def mart_counts(settings: ConnectionSettings, schema: str) -> dict[str, int]:
    counts = settings.query(
        f'select (select count(*) from "{schema}".customers), (select count(*) from "{schema}".orders)'
    )
    return dict(zip(("customers", "orders"), counts[0], strict=True))


def print_summary(summary: dict[str, object], counts: dict[str, int], expected: dict[str, int]) -> None:
    states = summary.get("counts", {})
    print(f"\n{DAG_ID}: {summary['state']} in {summary.get('seconds', '?')} s")
    print("  tasks: " + ", ".join(f"{number} {state}" for state, number in sorted(states.items())))
    for task_id, state in sorted(summary.get("tasks", {}).items()):
        if state != "success":
            print(f"    {task_id}: {state}")
    for mart, rows in counts.items():
        verdict = "ok" if rows == expected[mart] else f"EXPECTED {expected[mart]}"
        print(f"  mart {mart}: {rows} rows ({verdict})")


def main() -> int:
    try:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--scale", type=int, default=1, help="data size: 1 is the small default")
        scale = parser.parse_args().scale
        config = load_settings()
        db, where = database()
        print(f"main job: using {where}")
        wait_until_reachable(db)
        prepare_project(config, scale)
        env = airflow_env(LOCAL_DIR / "airflow", config, db)
        migrate_metadata_db(env)
        summary = run_dag(env)
        if summary["state"] in ("import_error", "missing"):
            raise MainJobError(f"the DAG could not be loaded: {json.dumps(summary)}")
        expected = generate_data.expected_marts(scale)
        counts = mart_counts(db, config.warehouse.target_schema)
        print_summary(summary, counts, {"customers": expected["customers_rows"], "orders": expected["orders_rows"]})
    except (MainJobError, PostgresError, BlueprintConfigError, ManifestNotReady, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0 if summary["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
