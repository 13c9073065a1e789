"""Metadata databases copied from a template migrated once (tools/airflow_db.py): on SQLite and on
a real PostgreSQL, a new home's database is a copy that Airflow's own check accepts, the template
is migrated once for many homes, and a database with tables of its own, or a role that may not
create databases, is migrated in place as before."""

from __future__ import annotations

import configparser
import contextlib
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tools import airflow_db
from tools.local_env import AIRFLOW_BIN
from tools.postgres import ConnectionSettings, LocalPostgres

pytestmark = pytest.mark.integration


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, str]]:
    """Every real `airflow db migrate` these tests cause, by its environment; SQLite templates in
    this test's own folder."""
    calls: list[dict[str, str]] = []
    real = airflow_db.run_airflow_db_migrate

    def counted(env: dict[str, str]) -> None:
        calls.append(env)
        real(env)

    monkeypatch.setattr(airflow_db, "run_airflow_db_migrate", counted)
    monkeypatch.setattr(airflow_db, "SQLITE_TEMPLATES", tmp_path / "templates")
    return calls


def _env(home: Path, database: ConnectionSettings | None = None) -> dict[str, str]:
    return airflow_db.home_env(home, database.sqlalchemy_url() if database is not None else "")


def _airflow_accepts(env: dict[str, str]) -> None:
    """Airflow's own verdict: the database is at the head of this version's migrations."""
    check = [str(AIRFLOW_BIN / "airflow"), "db", "check-migrations", "-t", "0"]
    result = subprocess.run(check, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]


def _fernet_key(home: Path) -> str:
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    key = config.get("core", "fernet_key", fallback="")
    assert key, f"no Fernet key in {home / 'airflow.cfg'}"
    return key


def test_new_sqlite_homes_are_copies_of_one_migration(migrations: list[dict], tmp_path: Path) -> None:
    homes = [tmp_path / f"home{index}" for index in range(3)]
    for home in homes:
        airflow_db.migrate_metadata_db(_env(home))

    assert len(migrations) == 1, migrations
    assert migrations[0]["AIRFLOW_HOME"] not in {str(home) for home in homes}  # the template's scratch home
    template = airflow_db.SQLITE_TEMPLATES / f"{airflow_db.template_key(_env(homes[0]))}.db"
    assert sorted(path.name for path in airflow_db.SQLITE_TEMPLATES.iterdir()) == [template.name]
    for home in homes:
        with sqlite3.connect(home / "airflow.db") as database:
            assert database.execute("select pool from slot_pool").fetchall() == [("default_pool",)]
    # Each home has its own config, with its own Fernet key, before any service starts.
    assert len({_fernet_key(home) for home in homes}) == len(homes)
    _airflow_accepts(_env(homes[-1]))


def test_a_sqlite_home_with_a_database_is_migrated_in_place(migrations: list[dict], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "airflow.db") as database:
        database.execute("create table kept (value text)")
        database.execute("insert into kept values ('ours')")

    airflow_db.migrate_metadata_db(_env(home))

    assert [call["AIRFLOW_HOME"] for call in migrations] == [str(home)]
    assert not airflow_db.SQLITE_TEMPLATES.exists()
    with sqlite3.connect(home / "airflow.db") as database:
        assert database.execute("select value from kept").fetchall() == [("ours",)]
        assert database.execute("select pool from slot_pool").fetchall() == [("default_pool",)]


def test_new_postgres_databases_are_copies_of_the_servers_template(
    migrations: list[dict], postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    databases = [postgres_server.database(f"airflow_copy_{index}") for index in range(2)]
    for index, database in enumerate(databases):
        airflow_db.migrate_metadata_db(_env(tmp_path / f"home{index}", database))

    template = airflow_db.template_key(_env(tmp_path))
    # The template was migrated at most once, by a test before this one or here, and no database in place.
    assert len(migrations) <= 1
    assert not {call["AIRFLOW_HOME"] for call in migrations} & {str(tmp_path / "home0"), str(tmp_path / "home1")}
    assert postgres_server.settings().query("select 1 from pg_database where datname = %s", template) == [(1,)]
    for database in databases:
        assert database.query("select pool from slot_pool") == [("default_pool",)]
    assert _fernet_key(tmp_path / "home0") != _fernet_key(tmp_path / "home1")
    _airflow_accepts(_env(tmp_path / "home1", databases[1]))


@pytest.mark.parametrize(
    ("name", "objects"),
    [("airflow_with_a_table", "create table kept (value text); insert into kept values ('ours')"),
     ("airflow_with_a_view", "create view kept as select 'ours'::text as value")],
)  # fmt: skip
def test_a_postgres_database_with_objects_of_its_own_is_migrated_in_place(
    migrations: list[dict], postgres_server: LocalPostgres, tmp_path: Path, name: str, objects: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    database = postgres_server.database(name)
    database.query(objects)

    airflow_db.migrate_metadata_db(_env(tmp_path / "home", database))

    assert [call["AIRFLOW_HOME"] for call in migrations] == [str(tmp_path / "home")]
    assert database.query("select value from kept") == [("ours",)]
    assert database.query("select pool from slot_pool") == [("default_pool",)]
    assert f"{name} already holds tables, views or functions" in capsys.readouterr().err


def test_a_role_that_may_not_create_databases_gets_a_plain_migration(
    migrations: list[dict], postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    limited = _role_with_a_database(postgres_server, "airflow_limited", "nocreatedb")

    airflow_db.migrate_metadata_db(_env(tmp_path / "home", limited))

    assert [call["AIRFLOW_HOME"] for call in migrations][-1] == str(tmp_path / "home")
    assert limited.query("select pool from slot_pool") == [("default_pool",)]


def test_a_database_of_another_role_is_migrated_in_place_and_kept(
    migrations: list[dict], postgres_server: LocalPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = _role_with_a_database(postgres_server, "airflow_owner", "createdb")
    admin = postgres_server.settings()
    as_admin = ConnectionSettings(admin.host, admin.port, admin.user, admin.password, owner.database)

    airflow_db.migrate_metadata_db(_env(tmp_path / "home", as_admin))

    assert [call["AIRFLOW_HOME"] for call in migrations][-1] == str(tmp_path / "home")
    query = "select pg_get_userbyid(datdba) from pg_database where datname = %s"
    assert admin.query(query, owner.database) == [("airflow_owner",)]
    assert f"{owner.database} belongs to another role" in capsys.readouterr().err


def test_a_url_with_connection_options_is_migrated_in_place(
    migrations: list[dict], postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    database = postgres_server.database("airflow_with_options")
    env = _env(tmp_path / "home", database)
    env[airflow_db.SQL_ALCHEMY_CONN] += "?connect_timeout=10"

    airflow_db.migrate_metadata_db(env)

    assert [call["AIRFLOW_HOME"] for call in migrations] == [str(tmp_path / "home")]


def _role_with_a_database(server: LocalPostgres, role: str, privilege: str) -> ConnectionSettings:
    """A login role owning a fresh database named after it (both made anew, so a rerun works)."""
    admin = server.settings()
    with contextlib.closing(admin.connect()) as connection:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(f"drop database if exists {role}_db")
            cursor.execute(f"drop role if exists {role}")
            cursor.execute(f"create role {role} login password 'role-pw' {privilege}")
            cursor.execute(f"create database {role}_db owner {role}")
    return ConnectionSettings(admin.host, admin.port, role, "role-pw", f"{role}_db")


def test_the_template_key_follows_what_a_migration_writes(tmp_path: Path) -> None:
    base = _env(tmp_path)
    same = {**base, "AIRFLOW__API__PORT": "8123", "AIRFLOW_HOME": str(tmp_path / "elsewhere")}
    log_template = {**base, "AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE": "{{ ti.dag_id }}.log"}

    assert airflow_db.template_key(same) == airflow_db.template_key(base)
    assert airflow_db.template_key(log_template) != airflow_db.template_key(base)
    assert airflow_db.template_key(base).startswith("airflow_" + airflow_db.airflow_version().replace(".", "_"))
