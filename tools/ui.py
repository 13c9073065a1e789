"""`make ui`: the same local setup as `make run`, then `airflow standalone` to browse it.

Scheduler, triggerer, DAG processor and API server in one process, on http://127.0.0.1:8080.
It listens on the loopback address only, where every visitor may be an admin (SimpleAuthManager's
all_admins: no login on your own laptop). UI_HOST=0.0.0.0 (or another address) opens it to your
network: then there is a login, an `admin` user whose password Airflow generates, and the
all-admins shortcut is refused, since anyone who can reach the port could read the warehouse
connection.

Each enabled project's dbt docs (written by `make manifest` into its target/ folder, or by the
docs task into docs.location) appear under Browse as "dbt Docs (<project>)", served by Cosmos's
plugin from the variable set here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from include.blueprint.dbt_docs import VARIABLE as DOCS_VARIABLE
from include.blueprint.dbt_docs import docs_projects_json, seed_local_docs
from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.airflow_db import migrate_metadata_db
from tools.local_env import AIRFLOW_BIN, LOCAL_DIR, airflow_env
from tools.main_job import MainJobError, database, prepare_projects
from tools.postgres import PostgresError, wait_until_reachable
from tools.process_groups import stop_group

LOOPBACK = ("127.0.0.1", "::1", "localhost")
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
STOP_SECONDS = 20  # standalone's own shutdown; then whatever of it is left is killed


def server_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Airflow settings for the UI's address and authentication; raises MainJobError on an unsafe mix."""
    host, port = environ.get("UI_HOST", "127.0.0.1"), environ.get("UI_PORT", "8080")
    if not port.isdigit():
        raise MainJobError(f"UI_PORT={port!r} is not a port number")
    listen = {"AIRFLOW__API__HOST": host, "AIRFLOW__API__PORT": port}
    if host in LOOPBACK:
        return {**listen, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    if environ.get("UI_ALL_ADMINS", "").lower() in ("1", "true", "yes"):
        raise MainJobError(
            f"UI_HOST={host} opens the UI beyond this machine, where UI_ALL_ADMINS would make every visitor "
            "an admin who can read the warehouse connection: unset UI_ALL_ADMINS (you then log in as admin), "
            "or keep the default UI_HOST=127.0.0.1"
        )
    return {
        **listen,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    }


def main() -> int:
    try:
        listen = server_settings(os.environ)
        config = load_settings()
        db, where = database()
        wait_until_reachable(db)
        prepare_projects(config, scale=1)
        env = airflow_env(LOCAL_DIR / "airflow", config, db)
        migrate_metadata_db(env)
    except (MainJobError, PostgresError, BlueprintConfigError, ManifestNotReady, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    env.update(listen)
    # airflow_env drops every AIRFLOW__ variable of the caller's shell, so this is the only value.
    seed_local_docs(config)
    env[DOCS_VARIABLE] = docs_projects_json(config)
    url = f"http://{listen['AIRFLOW__API__HOST']}:{listen['AIRFLOW__API__PORT']}"
    login = (
        "no login (loopback only)"
        if listen["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
        else f"log in as admin, password in {LOCAL_DIR / 'airflow' / PASSWORDS_FILE}"
    )
    print(f"ui: dbt runs against {where}; open {url} ({login}; Ctrl-C stops everything)")
    return run_standalone(env)


def _stop_on(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run_standalone(env: dict[str, str], command: list[str] | None = None) -> int:
    """`airflow standalone` in a process group of its own, stopped whole when this process is asked
    to stop (Ctrl-C, SIGTERM, a closed terminal) or when standalone exits: its scheduler can hang
    in its own shutdown after standalone is gone, and would go on scheduling unseen."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    command = command or [str(AIRFLOW_BIN / "airflow"), "standalone"]
    standalone = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return standalone.wait()
    except SystemExit as stop:
        return int(stop.code)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_group(standalone, timeout=STOP_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
