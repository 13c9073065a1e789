"""`make ui`: the same local setup as `make run`, then `airflow standalone` to browse it.

Scheduler, triggerer, DAG processor and API server under one command, on http://127.0.0.1:8080.
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
import time
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
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


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


def run_standalone(env: dict[str, str], command: list[str] | None = None, stop_seconds: float = STOP_SECONDS) -> int:
    """`airflow standalone` (or `command`) in a session of its own, stopped whole when this process
    is asked to stop (Ctrl-C, Ctrl-\\, SIGTERM, a closed terminal) or when standalone exits: its
    scheduler can hang in its own shutdown after standalone is gone, and would go on scheduling
    unseen. The whole group gets SIGTERM, each component's own graceful stop (about 7 s here; on
    SIGINT standalone's ordered shutdown took over 20 s), and what is left after `stop_seconds` is
    killed. Returns standalone's exit status, or 128 + the signal that stopped it."""
    requested: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        requested.append(signum)  # only noted: the loop below acts on it, once standalone exists

    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    standalone = subprocess.Popen(
        command or [str(AIRFLOW_BIN / "airflow"), "standalone"], env=env, start_new_session=True
    )
    try:
        while standalone.poll() is None and not requested:
            time.sleep(0.2)
    finally:
        if requested:
            print(f"ui: stopping airflow standalone (up to {stop_seconds:g} s)", file=sys.stderr, flush=True)
        if stop_group(standalone, stop_seconds):
            print(f"ui: killed what was left of airflow standalone after {stop_seconds:g} s", file=sys.stderr)
    if requested:
        return 128 + requested[0]
    return standalone.returncode if standalone.returncode >= 0 else 128 - standalone.returncode


if __name__ == "__main__":
    sys.exit(main())
