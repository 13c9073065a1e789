"""`make ui`: the same local setup as `make run`, then `airflow standalone` to browse it.

Scheduler, triggerer, DAG processor and API server in one process on http://localhost:8080.
Local only: every visitor is an admin (SimpleAuthManager with all_admins), so do not expose it.
"""

from __future__ import annotations

import os
import sys

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.local_env import AIRFLOW_BIN, LOCAL_DIR, airflow_env, migrate_metadata_db
from tools.main_job import MainJobError, database, prepare_projects
from tools.postgres import PostgresError, wait_until_reachable


def main() -> int:
    try:
        config = load_settings()
        db, where = database()
        wait_until_reachable(db)
        prepare_projects(config, scale=1)
        env = airflow_env(LOCAL_DIR / "airflow", config, db)
        migrate_metadata_db(env)
    except (MainJobError, PostgresError, BlueprintConfigError, ManifestNotReady, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    print(f"ui: dbt runs against {where}; open http://localhost:8080 (Ctrl-C stops everything)")
    os.execve(str(AIRFLOW_BIN / "airflow"), ["airflow", "standalone"], env)
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
