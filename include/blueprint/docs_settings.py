"""The dbt docs task: the `docs` settings (docs_task.py builds the task, dbt_docs.py serves it).

    docs:
      after_build: true                     # every DAG; a declaration's docs_after_build overrides it
      location: abfs://dbt-docs/prod        # null: a local folder (see storage.default_location)
      conn_id: azure_dbt_docs               # object storage only: the Airflow connection

Each project's site goes to <location>/<project>/ (index.html, manifest.json, catalog.json), where
Cosmos's UI plugin reads it. storage.py says which mistakes are refused where.
"""

from __future__ import annotations

from include.blueprint.storage import StorageLocation

DEFAULT_FOLDER = "dbt-docs"


class DocsSettings(StorageLocation):
    # A `dbt docs generate` task after each DAG's build, against the warehouse (so the catalog
    # has column types and row counts); false: only the offline docs of `make manifest`.
    after_build: bool = False

    def problems(self) -> list[tuple[str, str]]:
        # Checked even when after_build is false: one declaration may turn the task on.
        return self.location_problems()

    def project_location(self, project: str) -> str:
        return self.joined(project)
