"""`make run`: every enabled dbt project through Airflow, end to end, on local defaults.

1. a PostgreSQL: the embedded one under .local/postgres, or yours when POSTGRES_HOST is set;
2. jaffle_shop's generated raw data (--scale, default 1) as dbt seeds, and fresh manifests;
3. a project-local AIRFLOW_HOME (.local/airflow) with SQLite metadata;
4. each project's first local DAG (jaffle_shop_local), or the DAGs of --dags, run to completion
   with `dag.test()`;
5. a summary: task states, each model's state and row count, and for jaffle_shop the marts'
   row counts against what the generated data implies.
Everything is reused on the next run. Problems stop it with one line naming the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint.dag_specs import DagSpec, dag_specs
from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, Settings, load_settings
from tools import generate_data
from tools.airflow_db import migrate_metadata_db
from tools.local_env import AIRFLOW_BIN, DEFAULT_EMBEDDED_PORT, LOCAL_DIR, REPO_ROOT, airflow_env
from tools.manifest import refresh
from tools.postgres import ConnectionSettings, LocalPostgres, PostgresError, wait_until_reachable
from tools.run_summary import print_summary, relation_rows

MAIN_MODE = "local"
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


def prepare_projects(config: Settings, scale: int) -> None:
    """jaffle_shop's seeds at `scale`, and a fresh manifest for every registered project."""
    jaffle_shop = generate_data.JAFFLE_SHOP_DIR
    if any(project.project_dir == jaffle_shop for project in config.projects.values()):
        generate_data.generate(jaffle_shop / "seeds", scale=scale)
    for name, project in config.projects.items():
        if refresh(config, project):
            print(f"main job: dbt parse of {name} (its manifest was missing or stale)")


def main_dags(config: Settings, requested: list[str]) -> list[DagSpec]:
    """The DAGs to run: those asked for, else each enabled project's first DAG in the local mode."""
    specs = dag_specs(config)
    if requested:
        known = {spec.dag_id: spec for spec in specs}
        unknown = [dag_id for dag_id in requested if dag_id not in known]
        if unknown:
            raise MainJobError(f"no declared DAG {', '.join(unknown)}; declared: {', '.join(known)}")
        return [known[dag_id] for dag_id in requested]
    firsts: dict[str, DagSpec] = {}
    for spec in specs:
        if spec.mode == MAIN_MODE:
            firsts.setdefault(spec.project_name, spec)
    if not firsts:
        raise MainJobError(f"no DAG in mode {MAIN_MODE}: add it to execution.enabled_modes, or pass DAGS=<dag ids>")
    return list(firsts.values())


def run_dag(env: dict[str, str], dag_id: str) -> dict[str, object]:
    log_path = LOCAL_DIR / f"main-job-{dag_id}.log"
    print(f"main job: running {dag_id} with `dag.test()` (logs: {_shown(log_path)})")
    with log_path.open("w") as log:
        result = subprocess.run(
            [str(AIRFLOW_BIN / "python"), "-m", "tools.run_dag", dag_id],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise MainJobError(f"the DAG run ended without a summary; see {log_path}") from None


def main() -> int:
    try:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--scale", type=int, default=1, help="jaffle_shop's data size: 1 is the small default")
        parser.add_argument("--dags", default="", help="comma-separated DAG ids (default: each project's local DAG)")
        args = parser.parse_args()
        config = load_settings()
        db, where = database()
        print(f"main job: using {where}")
        wait_until_reachable(db)
        prepare_projects(config, args.scale)
        specs = main_dags(config, [name.strip() for name in args.dags.split(",") if name.strip()])
        env = airflow_env(LOCAL_DIR / "airflow", config, db)
        migrate_metadata_db(env)
        states = []
        for spec in specs:
            summary = run_dag(env, spec.dag_id)
            if summary["state"] in ("import_error", "missing"):
                raise MainJobError(f"the DAG could not be loaded: {json.dumps(summary)}")
            rows = relation_rows(db, spec.project.manifest_path, spec.project_name)
            checks = jaffle_shop_checks(spec, rows, args.scale)
            states.append(print_summary(summary, rows, checks))
    except (MainJobError, PostgresError, BlueprintConfigError, ManifestNotReady, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0 if all(states) else 1


def jaffle_shop_checks(spec: DagSpec, rows: dict[str, int | None], scale: int) -> dict[str, int]:
    """For the blueprint's own example: the marts' row counts the generated data implies."""
    if spec.project_dir != generate_data.JAFFLE_SHOP_DIR:
        return {}
    expected = generate_data.expected_marts(scale)
    return {
        f"{spec.project_name}.customers": expected["customers_rows"],
        f"{spec.project_name}.orders": expected["orders_rows"],
    }


if __name__ == "__main__":
    sys.exit(main())
