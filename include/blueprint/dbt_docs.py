"""dbt docs in the Airflow UI: the `[cosmos] dbt_docs_projects` value for the registered projects.

Cosmos's Airflow 3 plugin (Airflow >= 3.1) reads that JSON when the API server starts: for each
project it serves <dir>/index.html, manifest.json and catalog.json under /cosmos/<name>/ and adds
"dbt Docs (<name>)" to the Browse menu. `make manifest` writes those files into each project's
target/ folder (offline docs: no column types or row counts); where a DAG of the project has the
docs task (docs_task.py), the plugin reads what that task writes to <docs.location>/<project>/
instead. `make ui` sets the variable itself; a deployment sets AIRFLOW__COSMOS__DBT_DOCS_PROJECTS
to what `python -m include.blueprint.dbt_docs` prints there.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from include.blueprint.settings import Settings, load_settings

VARIABLE = "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"
INDEX = "index.html"
# What `dbt docs generate` adds to the manifest's folder; without them the docs page is a 404.
SITE_FILES = (INDEX, "catalog.json")


def docs_ready(target_dir: Path) -> bool:
    return all((target_dir / name).is_file() for name in SITE_FILES)


def docs_task_writes(settings: Settings, name: str) -> bool:
    """Whether a DAG of project `name` has the docs task (its own docs_after_build, or the default)."""
    default = settings.docs.after_build
    return any(
        default if dag.docs_after_build is None else dag.docs_after_build for dag in settings.projects[name].dags
    )


def docs_projects(settings: Settings, location: str | None = None, conn_id: str | None = None) -> dict[str, Any]:
    """One entry per enabled project: <location>/<project> read with `conn_id` when given (s3://,
    gs://, abfs://..., read by Cosmos through Airflow's ObjectStoragePath); else where the docs
    task writes, for a project that has one; else the project's own target/ folder (the image
    builds it there too)."""
    projects: dict[str, Any] = {}
    for name, project in settings.projects.items():
        if not project.enabled:
            continue
        if location:
            folder, conn = f"{location.rstrip('/')}/{name}", conn_id
        elif docs_task_writes(settings, name):
            folder, conn = settings.docs.project_location(name), settings.docs.conn_id
        else:
            folder, conn = str(project.manifest_path.parent), None
        entry = {"dir": folder, "index": INDEX, "name": f"dbt Docs ({name})"}
        if conn:
            entry["conn_id"] = conn
        projects[name] = entry
    return projects


def seed_local_docs(settings: Settings) -> list[Path]:
    """Copy the offline docs of `make manifest` into a local docs task folder that has none yet,
    so the menu entry works before the task's first run (which then replaces them)."""
    folder = settings.docs.local_folder
    seeded = []
    for name, project in settings.projects.items():
        target, served = project.manifest_path.parent, (folder / name if folder else None)
        if not (project.enabled and served and docs_task_writes(settings, name)) or docs_ready(served):
            continue
        if docs_ready(target) and project.manifest_path.is_file():
            served.mkdir(parents=True, exist_ok=True)
            for file_name in (*SITE_FILES, project.manifest_path.name):
                shutil.copyfile(target / file_name, served / file_name)
            seeded.append(served)
    return seeded


def docs_projects_json(settings: Settings, location: str | None = None, conn_id: str | None = None) -> str:
    return json.dumps(docs_projects(settings, location, conn_id), sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=f"Print {VARIABLE} for this deployment's projects.")
    parser.add_argument(
        "--location", help="object storage holding <location>/<project>/index.html ... (default: the settings')"
    )
    parser.add_argument("--conn-id", help="the Airflow connection Cosmos reads that location with")
    args = parser.parse_args()
    print(docs_projects_json(load_settings(), args.location, args.conn_id))


if __name__ == "__main__":
    main()
