"""Airflow metadata databases for the local runs, tests and benchmarks, migrated once per Airflow
version instead of once per Airflow home.

`airflow db migrate` on an empty database takes 5-15 s and 4-5 CPU-s, and the test suite starts
an Airflow home per test file or test. A new home's database now starts as a copy of a template
migrated once: a file copy for SQLite (Airflow's default, what `dag.test()` runs use), `CREATE
DATABASE ... TEMPLATE` for PostgreSQL (the real-scheduler stacks). A template is keyed on what
a migration writes besides the schema: Airflow's version and the settings it reads (the log
templates, the auth manager and external database managers). A database that already holds
tables, or a server that refuses the copy, gets the plain `airflow db migrate`, as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.local_env import AIRFLOW_BIN, LOCAL_DIR

SQL_ALCHEMY_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
# What `airflow db migrate` reads besides the schema it creates (utils/db.py: the log template row,
# the tables of an auth manager or external database manager).
SETTINGS_A_MIGRATION_WRITES = (
    "AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE",
    "AIRFLOW__ELASTICSEARCH__LOG_ID_TEMPLATE",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__DATABASE__EXTERNAL_DB_MANAGERS",
)
SQLITE_TEMPLATES = LOCAL_DIR / "airflow-db-templates"


@functools.cache
def airflow_version() -> str:
    return subprocess.run(
        [str(AIRFLOW_BIN / "python"), "-c", "import importlib.metadata as m; print(m.version('apache-airflow'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def template_key(env: dict[str, str]) -> str:
    """airflow-<version>-<hash of the settings a migration writes>, safe as a file or database name."""
    settings = "\n".join(f"{name}={env.get(name, '')}" for name in SETTINGS_A_MIGRATION_WRITES)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
    return f"airflow_{airflow_version()}_{digest}".replace(".", "_").replace("-", "_").lower()


def migrate_metadata_db(env: dict[str, str]) -> None:
    """Give AIRFLOW_HOME's metadata database Airflow's schema, once per home and Airflow version."""
    home = Path(env["AIRFLOW_HOME"])
    stamp = home / f".migrated-{airflow_version()}"
    if stamp.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    url = env.get(SQL_ALCHEMY_CONN, "")
    if not url:
        copied = _copy_sqlite_template(env, home / "airflow.db")
    elif url.startswith("postgresql"):
        copied = _copy_postgres_template(env, url)
    else:
        copied = False
    if copied:
        write_airflow_config(env)
    else:
        run_airflow_db_migrate(env)
    stamp.touch()


def write_airflow_config(env: dict[str, str]) -> None:
    """Write the home's airflow.cfg, as Airflow's first command in a new home does (with the Fernet
    and API secret keys it generates), before any service starts. `airflow db migrate` did it as a
    side effect; without it the services of a stack, started together, would each write their own
    keys, and a trigger's arguments encrypted by the scheduler could not be read by the triggerer."""
    if (Path(env["AIRFLOW_HOME"]) / "airflow.cfg").exists():
        return
    # What the `airflow` CLI runs before any command (airflow/__main__.py); importing Airflow does not.
    write = "from airflow.configuration import write_default_airflow_configuration_if_needed as w; w()"
    command = [str(AIRFLOW_BIN / "python"), "-c", write]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"writing airflow.cfg failed:\n{result.stderr[-2000:]}")


def run_airflow_db_migrate(env: dict[str, str]) -> None:
    result = subprocess.run([str(AIRFLOW_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stderr[-2000:]}")


# -- SQLite ------------------------------------------------------------------------------------
def _copy_sqlite_template(env: dict[str, str], database: Path) -> bool:
    """Copy the template into a home that has no database yet, migrating the template first if
    needed; False when the home already has one (it is migrated in place)."""
    if database.exists():
        return False
    template = SQLITE_TEMPLATES / f"{template_key(env)}.db"
    if not template.exists():
        SQLITE_TEMPLATES.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=SQLITE_TEMPLATES, prefix="migrating-") as scratch:
            run_airflow_db_migrate({**env, "AIRFLOW_HOME": scratch})
            # Whole or absent: a concurrent caller sees either no template or a migrated one.
            os.replace(Path(scratch) / "airflow.db", template)
    shutil.copyfile(template, database)
    return True


# -- PostgreSQL --------------------------------------------------------------------------------
def _copy_postgres_template(env: dict[str, str], url: str) -> bool:
    """Replace an empty database with a copy of the server's template database (migrated first if
    the server has none); False, with the database left as it was, when it holds tables or the
    server refuses (a role without CREATEDB, another session connected, another owner)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    target = make_url(url)
    template = template_key(env)
    copy = f"{template}_copy"
    try:
        if _holds_tables(target):
            return False
        with _admin_session(target) as cursor, _advisory_lock(cursor, template):
            if not _database_exists(cursor, template):
                _migrate_template(cursor, env, target, template)
            cursor.execute(f'DROP DATABASE IF EXISTS "{copy}"')
            cursor.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
            try:
                cursor.execute(f'DROP DATABASE "{target.database}"')
            except psycopg2.Error:
                cursor.execute(f'DROP DATABASE "{copy}"')
                return False
            cursor.execute(f'ALTER DATABASE "{copy}" RENAME TO "{target.database}"')
    except psycopg2.Error:
        return False
    return True


def _connect(url: Any, database: str) -> Any:
    import psycopg2

    return psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=database,
        connect_timeout=10,
    )  # fmt: skip


def _holds_tables(url: Any) -> bool:
    with contextlib.closing(_connect(url, url.database)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        return cursor.fetchone()[0] > 0


@contextlib.contextmanager
def _admin_session(url: Any) -> Iterator[Any]:
    """A cursor on the server's `postgres` database, each statement committed on its own (CREATE
    and DROP DATABASE cannot run in a transaction)."""
    with contextlib.closing(_connect(url, "postgres")) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor


@contextlib.contextmanager
def _advisory_lock(cursor: Any, name: str) -> Iterator[None]:
    """One caller at a time per template on this server: two stacks starting at once must not both
    migrate it or copy it mid-migration."""
    cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
    try:
        yield
    finally:
        cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


def _database_exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cursor.fetchone() is not None


def _migrate_template(cursor: Any, env: dict[str, str], target: Any, template: str) -> None:
    """Migrate under a scratch name and rename when done, so the template name only ever stands for
    a migrated database (a failed migration leaves no template behind)."""
    scratch = f"{template}_migrating"
    cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
    cursor.execute(f'CREATE DATABASE "{scratch}"')
    scratch_url = target.set(database=scratch).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix="blueprint-airflow-template-") as home:
        run_airflow_db_migrate({**env, "AIRFLOW_HOME": home, SQL_ALCHEMY_CONN: scratch_url})
    cursor.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{template}"')
