"""Manifest-first rendering: DAGs render from dbt's manifest.json and never run dbt to parse.

The check here is the only thing a DAG file does with the dbt project at parse time besides
Cosmos reading the manifest: a few `stat` calls, no dbt process, no database, no network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import yaml

FIX_COMMAND = "make manifest"
# Written next to the manifest by `make manifest`: a digest of the dbt sources it was parsed from.
# Copies and syncs (S3, GCS, Astro bundles) do not keep modification times, so when the times say
# "stale", the content decides.
FINGERPRINT_NAME = "sources.sha256"
PACKAGE_FILES = ("packages.yml", "dependencies.yml")
_PROJECT_FILES = ("dbt_project.yml", *PACKAGE_FILES, "selectors.yml")
_DEFAULT_SOURCE_DIRS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "snapshot-paths": ["snapshots"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
}


class ManifestNotReady(RuntimeError):
    """The manifest is missing or older than the dbt sources; the message names the fix."""


def _source_dirs(project_dir: Path) -> Iterator[Path]:
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    for key, default in _DEFAULT_SOURCE_DIRS.items():
        for relative in project.get(key, default):
            yield project_dir / relative


def _local_packages(project_dir: Path) -> Iterator[Path]:
    """The folders of `local:` packages: their macros and models are sources of the manifest too."""
    for name in PACKAGE_FILES:
        declared = project_dir / name
        if declared.exists():
            for package in (yaml.safe_load(declared.read_text()) or {}).get("packages") or []:
                if isinstance(package, dict) and "local" in package:
                    yield project_dir / str(package["local"])


def _source_files(project_dir: Path) -> Iterator[Path]:
    for name in _PROJECT_FILES:
        candidate = project_dir / name
        if candidate.exists():
            yield candidate
    for directory in (*_source_dirs(project_dir), *_local_packages(project_dir)):
        if directory.is_dir():
            yield from (
                path
                for path in directory.rglob("*")
                if path.is_file() and not {"target", "logs", "dbt_packages"} & set(path.relative_to(directory).parts)
            )


def newest_source(project_dir: Path) -> tuple[Path, float]:
    newest, newest_mtime = project_dir / "dbt_project.yml", 0.0
    for path in _source_files(project_dir):
        mtime = path.stat().st_mtime
        if mtime > newest_mtime:
            newest, newest_mtime = path, mtime
    return newest, newest_mtime


def source_fingerprint(project_dir: Path) -> str:
    """A digest of every dbt source's path and content (only computed when the times disagree)."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(project_dir)):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_fingerprint(project_dir: Path, manifest_path: Path) -> Path:
    fingerprint = manifest_path.parent / FINGERPRINT_NAME
    fingerprint.write_text(source_fingerprint(project_dir) + "\n")
    return fingerprint


def _same_sources(project_dir: Path, manifest_path: Path) -> bool:
    fingerprint = manifest_path.parent / FINGERPRINT_NAME
    return fingerprint.exists() and fingerprint.read_text().strip() == source_fingerprint(project_dir)


def require_fresh_manifest(project_dir: Path, manifest_path: Path) -> Path:
    """Return the manifest path, or raise ManifestNotReady with a one-line fix."""
    if not (project_dir / "dbt_project.yml").exists():
        raise ManifestNotReady(
            f"no dbt project at {project_dir}: fix projects.<name>.project_dir in "
            "include/blueprint/config/projects/, or adopt one with `make adopt PROJECT=path`"
        )
    if not manifest_path.exists():
        raise ManifestNotReady(
            f"dbt manifest {manifest_path} is missing: run `{FIX_COMMAND}` (dbt parse; needs no database)"
        )
    source, source_mtime = newest_source(project_dir)
    if source_mtime > manifest_path.stat().st_mtime and not _same_sources(project_dir, manifest_path):
        raise ManifestNotReady(
            f"dbt manifest {manifest_path} is older than {source.relative_to(project_dir)}: "
            f"run `{FIX_COMMAND}` to refresh it"
        )
    return manifest_path
