"""Where each dbt task keeps its run artifacts: the `artifacts` settings (artifacts.py keeps them).

    artifacts:
      location: s3://data-platform-dbt/artifacts   # null: a local folder (see default_location)
      conn_id: aws_dbt_artifacts                   # object storage only: the Airflow connection
      retention_days: 30                           # 0: keep them forever

A location is a local folder or an object storage URL that Airflow's ObjectStoragePath opens with
the named connection. What can be checked from the settings alone (an unknown scheme, a missing or
needless conn_id) is checked when they load, so the preflight refuses it too; what depends on the
machine (a folder this user cannot write, the scheme's filesystem package missing) is checked when
the DAGs are built (`environment_problems`), since the preflight runs elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from include.blueprint.runtime import Section as _Section

LOCAL_DIR_VARIABLE = "BLUEPRINT_LOCAL_DIR"
DEFAULT_FOLDER = "dbt-artifacts"
# scheme -> (the Airflow provider registering it, the fsspec package it opens it with)
OBJECT_STORAGE = {
    "s3": ("amazon", "s3fs"),
    "s3a": ("amazon", "s3fs"),
    "gs": ("google", "gcsfs"),
    "gcs": ("google", "gcsfs"),
    "abfs": ("microsoft.azure", "adlfs"),
    "abfss": ("microsoft.azure", "adlfs"),
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ArtifactSettings(_Section):
    # false: dbt's artifacts stay in the task's temporary project copy and are lost with it.
    enabled: bool = True
    # Filled in by load_settings: a null location is default_location(), a relative one is
    # relative to the repository root like every other path of the settings.
    location: str = Field(min_length=1)
    conn_id: str | None = Field(default=None, min_length=1)
    # Each upload first deletes this DAG's runs whose newest artifact is older than this.
    retention_days: int = Field(default=30, ge=0, le=3650)

    @property
    def scheme(self) -> str | None:
        """The object storage scheme (s3, gs, abfs...), or None for a local folder."""
        found = _SCHEME.match(self.location)
        scheme = found.group(1).lower() if found else None
        return None if scheme == "file" else scheme

    @property
    def local_folder(self) -> Path | None:
        if self.scheme is not None:
            return None
        return Path(self.location.removeprefix("file://"))

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong and the fix) for every mistake visible in the settings alone."""
        if not self.enabled:
            return []
        scheme = self.scheme
        if scheme is not None and scheme not in OBJECT_STORAGE:
            known = ", ".join(f"{name}://" for name in OBJECT_STORAGE)
            return [("location", f"unknown scheme {scheme}://; use a local folder, file://, or one of {known}")]
        if scheme is not None and self.conn_id is None:
            needed = f"required for the {scheme}:// location: name the Airflow connection that can write there"
            return [("conn_id", needed)]
        if scheme is None and self.conn_id is not None:
            return [("conn_id", "only object storage locations take a connection; remove it or use a bucket URL")]
        return []


def default_location(environ: Mapping[str, str], repo_root: Path) -> str:
    """<BLUEPRINT_LOCAL_DIR>/dbt-artifacts, where `make run` keeps its state (.local/ by default)."""
    local_dir = environ.get(LOCAL_DIR_VARIABLE) or str(repo_root / ".local")
    return str(Path(local_dir).resolve() / DEFAULT_FOLDER)


def resolve_location(location: object, environ: Mapping[str, str], repo_root: Path) -> object:
    if location is None:
        return default_location(environ, repo_root)
    if isinstance(location, str) and location and not _SCHEME.match(location):
        return str(repo_root / location)  # absolute paths stay as they are
    return location


def environment_problems(artifacts: ArtifactSettings) -> list[str]:
    """What keeps this machine from keeping the artifacts, one line each with the fix."""
    if not artifacts.enabled:
        return []
    folder = artifacts.local_folder
    if folder is None:
        provider, package = OBJECT_STORAGE[artifacts.scheme or ""]
        if importlib.util.find_spec(package) is None:
            return [
                f"artifacts.location: {artifacts.scheme}:// needs the {package} package "
                f"(apache-airflow-providers-{provider.replace('.', '-')}[{package}]), which is not installed"
            ]
        return []
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        return [f"artifacts.location: {existing} is not a folder; choose another location"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [
            f"artifacts.location: {existing} is not writable by this user (uid {os.getuid()}); "
            "choose a writable folder or object storage"
        ]
    return []
