"""Where the local run keeps its state, and the environment Airflow and dbt run with there."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from include.blueprint.lineage import airflow_config as lineage_config
from include.blueprint.settings import Settings
from tools.postgres import ConnectionSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tests point this at a temporary folder so they never touch a developer's .local/.
LOCAL_DIR = Path(os.environ.get("BLUEPRINT_LOCAL_DIR") or REPO_ROOT / ".local").resolve()
DAGS_DIR = REPO_ROOT / "dags"
DOCKERFILE = REPO_ROOT / "Dockerfile"
AIRFLOW_BIN = REPO_ROOT / ".venvs" / "airflow" / "bin"
DBT_BIN = REPO_ROOT / ".venvs" / "dbt" / "bin"
DEFAULT_EMBEDDED_PORT = 55432

# dbt phones home on start unless told not to; with no internet that is a wait for nothing.
QUIET_DBT = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}


def connection_env(settings: Settings, database: ConnectionSettings) -> dict[str, str]:
    """The Airflow connection the DAGs use, as an AIRFLOW_CONN_* variable (never written to disk)."""
    connection = {
        "conn_type": "postgres",
        "host": database.host,
        "port": database.port,
        "login": database.user,
        "password": database.password,
        "schema": database.database,  # Airflow's Postgres connection calls the database "schema"
    }
    return {f"AIRFLOW_CONN_{settings.warehouse.conn_id.upper()}": json.dumps(connection)}


def image_airflow_config(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The Airflow settings (AIRFLOW__* variables) the deploy image sets with ENV. The Dockerfile is
    their one home: `astro dev start`, `make up` and deploys get them in the image, the local runs
    (`make run`, `make ui`, the tests and benchmarks) from here."""
    config = {}
    for instruction in re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines():
        words = instruction.split()
        for word in words[1:] if words[:1] == ["ENV"] else []:
            key, sep, value = word.partition("=")
            if sep and key.startswith("AIRFLOW__"):
                config[key] = value.strip('"')
    return config


def airflow_env(airflow_home: Path, settings: Settings, database: ConnectionSettings) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "POSTGRES_"))
    }
    env.update(image_airflow_config())
    env.update(QUIET_DBT)
    env.update(connection_env(settings, database))
    # Airflow's OpenLineage provider reads its transport from Airflow's config (include/blueprint/lineage.py).
    env.update(lineage_config(settings.lineage))
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home / "cosmos-cache"),
            # config/ holds airflow_local_settings.py, found in $AIRFLOW_HOME/config in the image.
            "PYTHONPATH": os.pathsep.join((str(REPO_ROOT), str(REPO_ROOT / "config"))),
            "PATH": f"{AIRFLOW_BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env
