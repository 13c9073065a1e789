"""The optional last task of a DAG: `dbt docs generate` against the warehouse, after a successful build.

It waits for every other task (Airflow's default all_success rule), so a failed build writes no
docs and the last good site stays online. It runs on the worker like the local mode's tasks, with
Cosmos's docs operators: into object storage with the one Cosmos has for the scheme
(DbtDocsS3LocalOperator, DbtDocsAzureStorageLocalOperator, DbtDocsGCSLocalOperator, which upload
through the provider's hook and the connection `docs.conn_id`); into a local folder with
DbtDocsLocalOperator and a callback copying the site out of the task's temporary project copy.
The virtualenv mode uses DbtDocsVirtualenvOperator, which has no upload variant: the same callback
copies the site through Airflow's ObjectStoragePath. Each project's site goes to
<docs.location>/<project>/, where dbt_docs.py points Cosmos's UI plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.blueprint.dag_specs import DagSpec
from include.blueprint.docs_settings import DocsSettings
from include.blueprint.settings import BlueprintConfigError
from include.blueprint.storage import filesystem

log = logging.getLogger(__name__)

TASK_ID = "dbt_docs"
# What the UI plugin reads; index.html last, so a reader never finds a new page with old data.
SITE = ("manifest.json", "catalog.json", "index.html")
# Modes whose workers run dbt from the local dbt venv (the watcher's producer does).
RUNS_LIKE_LOCAL = ("local", "watcher")


def bucket_and_folder(location: str, project: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix/<project>); abfs://container@account.../prefix too."""
    authority, _, prefix = location.split("://", 1)[1].partition("/")
    folder = "/".join(part for part in (prefix.strip("/"), project) if part)
    return authority.split("@", 1)[0], folder


def _cosmos_uploader(scheme: str) -> type:
    from cosmos.operators import local

    uploaders = {
        "s3": local.DbtDocsS3LocalOperator,
        "s3a": local.DbtDocsS3LocalOperator,
        "gs": local.DbtDocsGCSLocalOperator,
        "gcs": local.DbtDocsGCSLocalOperator,
        "abfs": local.DbtDocsAzureStorageLocalOperator,
        "abfss": local.DbtDocsAzureStorageLocalOperator,
    }
    return uploaders[scheme]


def _operator(spec: DagSpec) -> tuple[type, dict[str, Any]]:
    """The docs operator class and its arguments; the ones Cosmos uploads with carry the target."""
    from include.blueprint.modes import local, virtualenv

    docs = spec.settings.docs
    if spec.mode == "virtualenv":
        from cosmos.operators.virtualenv import DbtDocsVirtualenvOperator

        return DbtDocsVirtualenvOperator, virtualenv.worker_arguments(spec)
    if spec.mode not in RUNS_LIKE_LOCAL:
        raise BlueprintConfigError(
            f"docs_after_build: mode {spec.mode} runs dbt in a container, and Cosmos's docs operators run "
            "dbt on the worker; set docs_after_build: false on this DAG (the image's offline docs stay served)"
        )
    _, arguments = local.build_operator(spec)
    if docs.scheme is None:
        from cosmos.operators.local import DbtDocsLocalOperator

        return DbtDocsLocalOperator, arguments
    bucket, folder = bucket_and_folder(docs.location, spec.project_name)
    uploads = {"connection_id": docs.conn_id, "bucket_name": bucket, "folder_dir": folder}
    return _cosmos_uploader(docs.scheme), {**arguments, **uploads}


def _missing(project_dir: str, files: tuple[str, ...]) -> list[str]:
    target = Path(project_dir) / "target"
    return [name for name in files if not (target / name).is_file()]


@dataclass(frozen=True)
class CopyDocs:
    """Cosmos callback: copy the site dbt wrote into <location>/<project>/. A failure to write
    fails the task (writing the docs is its whole job)."""

    docs: DocsSettings
    project: str

    def __call__(self, project_dir: str, context: Any = None, **_: Any) -> None:
        missing = _missing(project_dir, SITE)
        if missing:  # dbt failed; its error, raised by Cosmos right after, is the task's error
            log.warning("dbt docs not written: dbt docs generate wrote no %s", ", ".join(missing))
            return
        fs, root = filesystem(self.docs)
        folder = f"{root}/{self.project}"
        fs.makedirs(folder, exist_ok=True)
        for name in SITE:
            fs.put_file(str(Path(project_dir) / "target" / name), f"{folder}/{name}")
        log.info("dbt docs written to %s", self.docs.project_location(self.project))


@dataclass(frozen=True)
class WhenGenerated:
    """Cosmos's own upload, run only when dbt wrote the site: otherwise it would fail on a missing
    file before Cosmos raises dbt's error, and hide it (and skip the artifact keeper after it)."""

    upload: Callable[..., None]
    files: tuple[str, ...]
    where: str

    def __call__(self, project_dir: str, **kwargs: Any) -> None:
        missing = _missing(project_dir, self.files)
        if missing:
            log.warning("dbt docs not uploaded: dbt docs generate wrote no %s", ", ".join(missing))
            return
        self.upload(project_dir, **kwargs)
        log.info("dbt docs written to %s", self.where)


def add_docs_task(dag: Any, spec: DagSpec) -> None:
    """A `dbt_docs` task downstream of every other task of the DAG."""
    operator_class, arguments = _operator(spec)
    leaves = [task for task in dag.tasks if not task.downstream_task_ids]
    with dag:
        docs_task = operator_class(task_id=TASK_ID, emit_datasets=False, **arguments)
    docs = spec.settings.docs
    if hasattr(docs_task, "upload_to_cloud_storage"):
        where = docs.project_location(spec.project_name)
        docs_task.callback = WhenGenerated(docs_task.upload_to_cloud_storage, tuple(docs_task.required_files), where)
    else:
        docs_task.callback = CopyDocs(docs, spec.project_name)
    for leaf in leaves:
        leaf >> docs_task
