"""dbt docs in the Airflow UI: the `[cosmos] dbt_docs_projects` value for the registered projects.

Cosmos's Airflow 3 plugin (Airflow >= 3.1) reads that JSON when the API server starts: for each
project it serves <dir>/index.html, manifest.json and catalog.json under /cosmos/<name>/ and adds
"dbt Docs (<name>)" to the Browse menu. `make manifest` writes those files into each project's
target/ folder; `make ui` sets the variable itself. A deployment sets
AIRFLOW__COSMOS__DBT_DOCS_PROJECTS to what `python -m include.blueprint.dbt_docs` prints there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from include.blueprint.settings import Settings, load_settings

VARIABLE = "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"
INDEX = "index.html"
# What `dbt docs generate` adds to the manifest's folder; without them the docs page is a 404.
SITE_FILES = (INDEX, "catalog.json")


def docs_ready(target_dir: Path) -> bool:
    return all((target_dir / name).is_file() for name in SITE_FILES)


def docs_projects(settings: Settings, location: str | None = None, conn_id: str | None = None) -> dict[str, Any]:
    """One entry per enabled project. Without `location`, each project's own target/ folder (the
    image builds it there too); with one (s3://, gs://, abfs://...), <location>/<project>, read by
    Cosmos through Airflow's ObjectStoragePath with `conn_id`."""
    projects: dict[str, Any] = {}
    for name, project in settings.projects.items():
        if not project.enabled:
            continue
        folder = f"{location.rstrip('/')}/{name}" if location else str(project.manifest_path.parent)
        entry = {"dir": folder, "index": INDEX, "name": f"dbt Docs ({name})"}
        if conn_id:
            entry["conn_id"] = conn_id
        projects[name] = entry
    return projects


def docs_projects_json(settings: Settings, location: str | None = None, conn_id: str | None = None) -> str:
    return json.dumps(docs_projects(settings, location, conn_id), sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=f"Print {VARIABLE} for this deployment's projects.")
    parser.add_argument("--location", help="object storage holding <location>/<project>/index.html ...")
    parser.add_argument("--conn-id", help="the Airflow connection Cosmos reads that location with")
    args = parser.parse_args()
    print(docs_projects_json(load_settings(), args.location, args.conn_id))


if __name__ == "__main__":
    main()
