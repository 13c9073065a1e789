"""A place the dbt tasks write to: a local folder, or object storage through an Airflow connection.

Run artifacts (artifact_settings.py) and the dbt docs (docs_settings.py) each have one. Three
kinds of check, each where it can be made:
- from the settings alone (an unknown scheme, a missing or needless conn_id): when they load, so
  the preflight refuses it too (`StorageLocation.location_problems`);
- on the machine (a folder this user cannot write, the scheme's fsspec package missing): at DAG
  import, since the workers import the DAGs and the preflight runs elsewhere (`machine_problems`);
- the connection (`connection_problems`): at DAG import too, where Airflow's secrets backends
  answer; CI's preflight does not hold the deployment's connections.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from include.blueprint.runtime import Section as _Section

LOCAL_DIR_VARIABLE = "BLUEPRINT_LOCAL_DIR"
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


class StorageLocation(_Section):
    # Filled in by load_settings: a null location is default_location(), a relative one is
    # relative to the repository root like every other path of the settings.
    location: str = Field(min_length=1)
    conn_id: str | None = Field(default=None, min_length=1)

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

    def location_problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong and the fix) for every mistake visible in the settings alone."""
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

    def joined(self, *parts: str) -> str:
        """The location with `parts` appended, as the location names it."""
        return "/".join([self.location.rstrip("/"), *parts])


def default_location(environ: Mapping[str, str], repo_root: Path, folder: str) -> str:
    """<BLUEPRINT_LOCAL_DIR>/<folder>, where `make run` keeps its state (.local/ by default)."""
    local_dir = environ.get(LOCAL_DIR_VARIABLE) or str(repo_root / ".local")
    return str(Path(local_dir).resolve() / folder)


def resolve_location(location: object, environ: Mapping[str, str], repo_root: Path, folder: str) -> object:
    if location is None:
        return default_location(environ, repo_root, folder)
    if isinstance(location, str) and location and not _SCHEME.match(location):
        return str(repo_root / location)  # absolute paths stay as they are
    return location


def machine_problems(section: str, storage: StorageLocation) -> list[str]:
    """What keeps this machine from writing there, one line each with the fix."""
    folder = storage.local_folder
    if folder is None:
        provider, package = OBJECT_STORAGE[storage.scheme or ""]
        if importlib.util.find_spec(package) is None:
            return [
                f"{section}.location: {storage.scheme}:// needs the {package} package "
                f"(apache-airflow-providers-{provider.replace('.', '-')}[{package}]), which is not installed"
            ]
        return []
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        return [f"{section}.location: {existing} is not a folder; choose another location"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [
            f"{section}.location: {existing} is not writable by this user (uid {os.getuid()}); "
            "choose a writable folder or object storage"
        ]
    return []


def connection_problems(section: str, storage: StorageLocation) -> list[str]:
    """The connection of an object storage location, looked up as a task would (environment
    variables, secrets backends, the metadata database): one line when it is not defined."""
    if storage.conn_id is None:
        return []
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(storage.conn_id)
    except AirflowNotFoundException:
        variable = f"AIRFLOW_CONN_{storage.conn_id.upper()}"
        return [
            f"{section}.conn_id: no Airflow connection {storage.conn_id!r} is defined; add it "
            f"({variable}, a secrets backend or Admin > Connections) or point {section}.conn_id at one"
        ]
    return []


def filesystem(storage: StorageLocation) -> tuple[Any, str]:
    """The fsspec filesystem of the location, and the location as a path on it."""
    if "://" not in storage.location:  # file:// goes through ObjectStoragePath, as object storage does
        from fsspec.implementations.local import LocalFileSystem

        # A plain folder skips ObjectStoragePath, whose first use loads every Airflow provider.
        return LocalFileSystem(), str(storage.local_folder)
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(storage.location, conn_id=storage.conn_id)
    return root.fs, root.path.rstrip("/")


def write_problems(section: str, storage: StorageLocation) -> list[str]:
    """Write and delete one small object there, as the tasks will: one line when it is refused.
    Not at DAG import (every parse would write); `python -m include.blueprint.storage_check` runs
    it. Object storage only: machine_problems already answers for a folder."""
    import uuid

    if storage.scheme is None:
        return []
    try:
        fs, root = filesystem(storage)
        probe = f"{root}/.blueprint-write-check-{uuid.uuid4().hex}"
        fs.pipe_file(probe, b"written by python -m include.blueprint.storage_check\n")
        fs.rm_file(probe)
    except Exception as error:  # whatever the filesystem raises, the answer is one line
        # Azure's errors append the request id and the response's XML: the first sentence says it.
        reason = " ".join(str(error).split()).split(" RequestId:")[0][:300]
        through = f" through connection {storage.conn_id!r}" if storage.conn_id else ""
        return [f"{section}.location: {storage.location} cannot be written{through}: {type(error).__name__}: {reason}"]
    return []
