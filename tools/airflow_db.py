"""Airflow metadata databases for the local runs, tests and benchmarks, migrated once per Airflow
version instead of once per Airflow home.

`airflow db migrate` on an empty database takes 3.5-4 s on a quiet machine (15-22 s under load)
and 4-5 CPU-s, and the test suite starts
an Airflow home per test file or test. A new home's database now starts as a copy of a template
migrated once: a file copy for SQLite (Airflow's default, what `dag.test()` runs use), `CREATE
DATABASE ... TEMPLATE` for PostgreSQL (the real-scheduler stacks). A template is keyed on what
a migration writes besides the schema: Airflow's version and the settings it reads (the log
templates, the default pool's size, the schema, the auth manager and external database
managers). A database that already holds tables, one the caller does not own, a URL with options
of its own, or a server that refuses the copy gets the plain `airflow db migrate`, as before (one
line on stderr says why). Templates live in LOCAL_DIR/airflow-db-templates (SQLite) and as
`airflow_<version>_<hash>` databases (PostgreSQL); deleting them only costs one migration.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.local_env import AIRFLOW_BIN, LOCAL_DIR

SQL_ALCHEMY_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
# The settings `airflow db migrate` reads into the database it creates (utils/db.py: the log
# template row, the default pool, where the tables go, an auth manager's or external manager's tables).
SETTINGS_A_MIGRATION_WRITES = (
    "AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE",
    "AIRFLOW__ELASTICSEARCH__LOG_ID_TEMPLATE",
    "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA",
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
    """airflow_<version>_<hash of the settings a migration writes>, safe as a file or database name."""
    settings = "\n".join(f"{name}={env.get(name, '')}" for name in SETTINGS_A_MIGRATION_WRITES)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
    return f"airflow_{airflow_version()}_{digest}".replace(".", "_").replace("-", "_").lower()


def home_env(home: Path, database_url: str = "") -> dict[str, str]:
    """The least environment an Airflow home needs: no example DAGs; SQLite without a URL."""
    env = {"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return {**env, SQL_ALCHEMY_CONN: database_url} if database_url else env


def migrate_metadata_db(env: dict[str, str], sqlite_templates: Path | None = None) -> None:
    """Give AIRFLOW_HOME's metadata database Airflow's schema, once per home and Airflow version
    (SQLite templates in `sqlite_templates`, by default SQLITE_TEMPLATES)."""
    home = Path(env["AIRFLOW_HOME"])
    stamp = home / f".migrated-{airflow_version()}"
    if stamp.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    url = env.get(SQL_ALCHEMY_CONN, "")
    if not url:
        copied = _copy_sqlite_template(env, home / "airflow.db", sqlite_templates or SQLITE_TEMPLATES)
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
def _copy_sqlite_template(env: dict[str, str], database: Path, templates: Path) -> bool:
    """Copy the template into a home that has no database yet, migrating the template first if
    needed; False when the home already has one (it is migrated in place)."""
    if database.exists():
        return False
    template = templates / f"{template_key(env)}.db"
    if not template.exists():
        templates.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=templates, prefix="migrating-") as scratch:
            run_airflow_db_migrate({**env, "AIRFLOW_HOME": scratch})
            migrated = Path(scratch) / "airflow.db"
            with contextlib.closing(sqlite3.connect(migrated)) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the one file
            # Whole or absent: a concurrent caller sees either no template or a migrated one.
            os.replace(migrated, template)
    partial = database.with_name(f".{database.name}.copying")
    shutil.copyfile(template, partial)
    os.replace(partial, database)  # an interrupted copy leaves no half database behind
    return True


# -- PostgreSQL --------------------------------------------------------------------------------
def _copy_postgres_template(env: dict[str, str], url: str) -> bool:
    """Swap an empty database the caller owns for a copy of the server's template database
    (migrated first if the server has none); False, with the database as it was, otherwise."""
    import psycopg2
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if target.query or not target.host:
        return _declined("the URL has connection options of its own")
    template = template_key(env)
    try:
        with _admin_session(target) as cursor, _advisory_lock(cursor, template):
            reason = _why_not_replaceable(cursor, target)
            if reason:
                return _declined(reason)
            if not _database_exists(cursor, template):
                _migrate_template(cursor, env, target, template)
            _swap_in_copy(cursor, target.database, template)
    except psycopg2.Error as error:
        return _declined(str(error).strip().splitlines()[0])
    return True


def _declined(reason: str) -> bool:
    print(f"airflow_db: migrating in place, not from the template: {reason}", file=sys.stderr)
    return False


def _why_not_replaceable(cursor: Any, target: Any) -> str | None:
    """Checked under the lock, so two callers of one database cannot both take it for empty."""
    cursor.execute(
        "SELECT pg_get_userbyid(datdba) = current_user FROM pg_database WHERE datname = %s", (target.database,)
    )
    owned = cursor.fetchone()
    if not owned or not owned[0]:
        return f"{target.database} belongs to another role"
    if _holds_objects(target):
        return f"{target.database} already holds tables, views or functions"
    return None


def _swap_in_copy(cursor: Any, database: str, template: str) -> None:
    """Copy, then swap names: the copy is made before the empty database is touched, and a failed
    rename puts the original back, so a refusal at any step leaves the database as it was."""
    copy, old = f"{template}_copy", f"{template}_old"
    cursor.execute(f'DROP DATABASE IF EXISTS "{copy}"')
    cursor.execute(f'DROP DATABASE IF EXISTS "{old}"')
    cursor.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
    try:
        cursor.execute(f'ALTER DATABASE "{database}" RENAME TO "{old}"')  # refused while someone is connected
    except BaseException:
        cursor.execute(f'DROP DATABASE "{copy}"')
        raise
    try:
        cursor.execute(f'ALTER DATABASE "{copy}" RENAME TO "{database}"')
    except BaseException:
        cursor.execute(f'ALTER DATABASE "{old}" RENAME TO "{database}"')
        raise
    cursor.execute(f'DROP DATABASE "{old}"')


def _connect(url: Any, database: str) -> Any:
    import psycopg2

    return psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=database,
        connect_timeout=10,
    )  # fmt: skip


def _holds_objects(url: Any) -> bool:
    """Any table, view, sequence or function outside PostgreSQL's own schemas."""
    user_objects = """
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%')
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))"""
    with contextlib.closing(_connect(url, url.database)) as connection, connection.cursor() as cursor:
        cursor.execute(user_objects)
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
