"""Where each dbt task keeps its run artifacts: the `artifacts` settings (artifacts.py keeps them).

    artifacts:
      location: s3://data-platform-dbt/artifacts   # null: a local folder (see storage.default_location)
      conn_id: aws_dbt_artifacts                   # object storage only: the Airflow connection
      retention_days: 30                           # 0: keep them forever

A location is a local folder or an object storage URL that Airflow's ObjectStoragePath opens with
the named connection; storage.py says which mistakes are refused where.
"""

from __future__ import annotations

from pydantic import Field

from include.blueprint.storage import StorageLocation, machine_problems

DEFAULT_FOLDER = "dbt-artifacts"


class ArtifactSettings(StorageLocation):
    # false: dbt's artifacts stay in the task's temporary project copy and are lost with it.
    enabled: bool = True
    # Each upload first deletes this DAG's runs whose newest artifact is older than this.
    retention_days: int = Field(default=30, ge=0, le=3650)

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong and the fix) for every mistake visible in the settings alone."""
        return self.location_problems() if self.enabled else []


def environment_problems(artifacts: ArtifactSettings) -> list[str]:
    """What keeps this machine from keeping the artifacts, one line each with the fix."""
    return machine_problems("artifacts", artifacts) if artifacts.enabled else []
