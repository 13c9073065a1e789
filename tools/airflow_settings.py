"""Apply an Astro CLI `airflow_settings.yaml` (connections, pools, variables) to Airflow's metadata
database, as `astro dev start` does; the local stack (docker/compose.yaml) runs it after
`airflow db migrate`. An entry that exists is replaced. Prints counts, never a value.

    python -m tools.airflow_settings airflow_settings.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tools.postgres import ConnectionSettings

CONNECTION_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
}


class SettingsFileError(ValueError):
    pass


def read_settings(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The file's connections, pools and variables; a wrong shape is one error naming the entry."""
    document = yaml.safe_load(path.read_text()) or {}
    section = (document.get("airflow") or {}) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise SettingsFileError(f"{path}: expected a mapping under `airflow:`")
    settings = {kind: section.get(kind) or [] for kind in ("connections", "pools", "variables")}
    keys = {"connections": "conn_id", "pools": "pool_name", "variables": "variable_name"}
    for kind, entries in settings.items():
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not entry.get(keys[kind]):
                raise SettingsFileError(f"{path}: {kind} entry {number} has no {keys[kind]}")
    return settings


def with_connection(source: Path, conn_id: str, database: ConnectionSettings, out: Path) -> Path:
    """A copy of `source` with connection `conn_id` pointed at `database` (the test and benchmark
    stacks point the warehouse connection at a server of their own)."""
    document = yaml.safe_load(source.read_text())
    (connection,) = [entry for entry in document["airflow"]["connections"] if entry["conn_id"] == conn_id]
    connection.update(conn_host=database.host, conn_port=database.port, conn_login=database.user,
                      conn_password=database.password, conn_schema=database.database)  # fmt: skip
    out.write_text(yaml.safe_dump(document))
    return out


def _connection_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    kwargs = {field: entry[key] for key, field in CONNECTION_FIELDS.items() if entry.get(key) not in (None, "")}
    extra = entry.get("conn_extra")
    if extra:
        kwargs["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
    return kwargs


def apply(settings: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for entry in settings["connections"]:
            session.query(Connection).filter(Connection.conn_id == entry["conn_id"]).delete()
            session.add(Connection(conn_id=entry["conn_id"], **_connection_kwargs(entry)))
        for entry in settings["pools"]:
            Pool.create_or_update_pool(
                entry["pool_name"], int(entry.get("pool_slot", 1)), entry.get("pool_description") or "",
                include_deferred=False, session=session,
            )  # fmt: skip
        for entry in settings["variables"]:
            Variable.set(entry["variable_name"], entry.get("variable_value", ""), session=session)
    return {kind: len(entries) for kind, entries in settings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    try:
        counts = apply(read_settings(args.path))
    except (OSError, yaml.YAMLError, SettingsFileError) as error:
        raise SystemExit(f"error: cannot apply {args.path}: {error}") from None
    print("airflow_settings: applied " + ", ".join(f"{count} {kind}" for kind, count in counts.items()))


if __name__ == "__main__":
    main()
