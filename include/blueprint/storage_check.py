"""`python -m include.blueprint.storage_check`: can this machine write where the dbt tasks write?

Checks the run artifacts' location (when enabled) and the docs task's (when a DAG has the task):
the filesystem package, the connection, then one real write and delete. Run it where the
deployment's connections are (a worker or the scheduler container; CI's preflight holds none):
it prints one line per location and exits 1 when any cannot be written.
"""

from __future__ import annotations

import logging
import sys

from include.blueprint.dbt_docs import docs_task_writes
from include.blueprint.settings import Settings, load_settings
from include.blueprint.storage import StorageLocation, connection_problems, machine_problems, write_problems


def locations(settings: Settings) -> dict[str, StorageLocation]:
    """section -> its location, for the sections whose tasks write somewhere."""
    found: dict[str, StorageLocation] = {}
    if settings.artifacts.enabled:
        found["artifacts"] = settings.artifacts
    if any(docs_task_writes(settings, name) for name, project in settings.projects.items() if project.enabled):
        found["docs"] = settings.docs
    return found


def problems(settings: Settings) -> list[str]:
    found = []
    for section, storage in locations(settings).items():
        found += (
            machine_problems(section, storage)
            or connection_problems(section, storage)
            or write_problems(section, storage)
        )
    return found


def main() -> int:
    # The Azure SDK logs every request and response at INFO: a page per write, not the answer.
    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = load_settings()
    found = problems(settings)
    for section, storage in locations(settings).items():
        if not any(line.startswith(f"{section}.") for line in found):
            print(f"ok: {section} can be written at {storage.location}")
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
