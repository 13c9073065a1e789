"""The dbt docs task without a DAG run: the `docs` settings and their refusals, the task each mode
and location gets (Cosmos's docs operators), the checks at DAG import (one line each), the
callbacks writing the site, and what Cosmos's UI plugin is pointed at.
tests/integration/test_object_storage.py runs it for real against Azure Blob Storage (Azurite)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cosmos.operators.local import (
    DbtDocsAzureStorageLocalOperator,
    DbtDocsGCSLocalOperator,
    DbtDocsLocalOperator,
    DbtDocsS3LocalOperator,
)
from cosmos.operators.virtualenv import DbtDocsVirtualenvOperator

from include.blueprint import docs_task
from include.blueprint.dag_specs import default_spec
from include.blueprint.dbt_docs import docs_projects, seed_local_docs
from include.blueprint.docs_settings import DocsSettings
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import REPO_ROOT, BlueprintConfigError, load_settings

ON = {"BLUEPRINT__DOCS__AFTER_BUILD": "true"}
LOCATION, CONN = "BLUEPRINT__DOCS__LOCATION", "BLUEPRINT__DOCS__CONN_ID"


def test_off_by_default_in_a_folder_under_the_local_dir(tmp_path: Path) -> None:
    docs = load_settings({"BLUEPRINT_LOCAL_DIR": str(tmp_path)}).docs
    assert (docs.after_build, docs.location, docs.conn_id) == (False, str(tmp_path / "dbt-docs"), None)
    assert load_settings({LOCATION: "var/docs"}).docs.location == str(REPO_ROOT / "var" / "docs")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({LOCATION: "s3://docs/dbt"}, "docs.conn_id: required for the s3:// location: name the Airflow connection"),
        ({LOCATION: "ftp://host/docs", CONN: "x"}, "docs.location: unknown scheme ftp://; use a local folder"),
        ({CONN: "aws_docs"}, "docs.conn_id: only object storage locations take a connection"),
        ({"BLUEPRINT__DOCS__AFTER": "true"}, "docs.after: unknown setting"),
    ],
)
def test_each_bad_setting_is_refused_in_one_line(environ: dict, expected: str) -> None:
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(environ)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid blueprint configuration (1 problem(s)):", lines
    assert lines[1].startswith(f"  - {expected}"), lines


def _docs_tasks(mode: str, environ: dict) -> dict:
    return {
        dag_id: dag.get_task(docs_task.TASK_ID) for dag_id, dag in declared_dags(mode, load_settings(environ)).items()
    }


def test_every_dag_ends_with_the_docs_task_writing_to_the_local_folder(registered_projects: dict) -> None:
    for dag in declared_dags("local", load_settings(ON)).values():
        task = dag.get_task(docs_task.TASK_ID)
        assert type(task) is DbtDocsLocalOperator, dag.dag_id
        others = {t.task_id for t in dag.tasks} - {task.task_id}
        assert others == task.get_flat_relative_ids(upstream=True), "after every other task"
        assert task.trigger_rule == "all_success", "only after a successful build"
        copy, keeper = task.callback
        assert copy == docs_task.CopyDocs(load_settings(ON).docs, "jaffle_shop")
        assert type(keeper).__name__ == "KeepArtifacts", "its own artifacts are kept like any dbt task's"
    assert all(docs_task.TASK_ID not in dag.task_ids for dag in declared_dags("local", load_settings({})).values())


def test_a_declaration_overrides_the_deployment_default(registered_projects: dict) -> None:
    declarations = (
        '[{id: "{project}_{mode}", docs_after_build: true},'
        ' {id: "{project}_{mode}_x", granularity: project, allow_overlap: true}]'
    )
    dags = declared_dags("local", load_settings({"BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": declarations}))
    assert {dag_id: docs_task.TASK_ID in dag.task_ids for dag_id, dag in dags.items()} == {
        "jaffle_shop_local": True, "jaffle_shop_local_x": False,
    }  # fmt: skip


UPLOADERS = {
    "s3://docs-bucket/dbt": (DbtDocsS3LocalOperator, "docs-bucket", "dbt/jaffle_shop"),
    "gs://docs-bucket": (DbtDocsGCSLocalOperator, "docs-bucket", "jaffle_shop"),
    "abfs://dbt-docs@acct.dfs.core.windows.net/prod/": (
        DbtDocsAzureStorageLocalOperator, "dbt-docs", "prod/jaffle_shop",
    ),
}  # fmt: skip


@pytest.mark.parametrize("location", UPLOADERS)
def test_object_storage_gets_cosmos_s_upload_operator_for_its_scheme(location: str, registered_projects: dict) -> None:
    spec = default_spec(load_settings({**ON, LOCATION: location, CONN: "docs_store"}), "shop_local", "local")
    operator, arguments = docs_task._operator(spec)
    expected = UPLOADERS[location]
    assert (operator, arguments["bucket_name"], arguments["folder_dir"], arguments["connection_id"]) == (
        *expected, "docs_store",
    )  # fmt: skip


def test_cosmos_s_upload_runs_only_when_dbt_wrote_the_site(
    registered_projects: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DOCS_STORE", '{"conn_type": "wasb"}')
    for task in _docs_tasks("local", {**ON, LOCATION: "abfs://dbt-docs/prod", CONN: "docs_store"}).values():
        assert type(task) is DbtDocsAzureStorageLocalOperator
        upload = task.callback[0]
        assert isinstance(upload, docs_task.WhenGenerated)
        assert (upload.upload, upload.where) == (task.upload_to_cloud_storage, "abfs://dbt-docs/prod/jaffle_shop")


def test_the_virtualenv_mode_copies_what_its_operator_wrote(registered_projects: dict) -> None:
    environ = {**ON, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[virtualenv]"}
    for task in _docs_tasks("virtualenv", environ).values():
        assert type(task) is DbtDocsVirtualenvOperator
        assert isinstance(task.callback[0], docs_task.CopyDocs)


def test_a_container_mode_is_refused_in_one_line(registered_projects: dict) -> None:
    environ = {**ON, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[docker]", "BLUEPRINT__RUNTIME__IMAGE": "dbt:1"}
    with pytest.raises(BlueprintConfigError) as caught:
        declared_dags("docker", load_settings(environ))
    assert (
        "projects.jaffle_shop.dags[0] (jaffle_shop_docker): docs_after_build: mode docker runs dbt in a container"
        in str(caught.value)
    )


def test_a_missing_connection_and_an_unusable_folder_fail_the_import_in_one_line(
    registered_projects: dict, tmp_path: Path
) -> None:
    with pytest.raises(BlueprintConfigError) as caught:
        declared_dags("local", load_settings({**ON, LOCATION: "abfs://docs/prod", CONN: "azure_docs"}))
    assert str(caught.value).splitlines() == [
        "the dbt docs task cannot write its site (1 problem(s)):",
        "  - docs.conn_id: no Airflow connection 'azure_docs' is defined; add it (AIRFLOW_CONN_AZURE_DOCS, "
        "a secrets backend or Admin > Connections) or point docs.conn_id at one",
    ]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BlueprintConfigError) as caught:
        declared_dags("local", load_settings({**ON, LOCATION: str(tmp_path / "a-file" / "docs")}))
    assert str(caught.value).splitlines()[1:] == [
        f"  - docs.location: {tmp_path / 'a-file'} is not a folder; choose another location"
    ]
    # Without the task, the docs location is never checked.
    assert declared_dags("local", load_settings({LOCATION: str(tmp_path / "a-file" / "docs")}))


def _site(tmp_path: Path, files: tuple[str, ...] = docs_task.SITE) -> Path:
    project = tmp_path / "project-copy"
    (project / "target").mkdir(parents=True)
    for name in files:
        (project / "target" / name).write_text(f"{name} of this run")
    return project


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_the_copy_writes_the_site_into_the_project_s_folder(tmp_path: Path, scheme: str) -> None:
    """A plain folder through fsspec's local filesystem, file:// through ObjectStoragePath."""
    docs = DocsSettings(location=f"{scheme}{tmp_path / 'docs'}")
    docs_task.CopyDocs(docs, "shop")(str(_site(tmp_path)), context={})
    written = tmp_path / "docs" / "shop"
    assert sorted(path.name for path in written.iterdir()) == sorted(docs_task.SITE)
    assert (written / "catalog.json").read_text() == "catalog.json of this run"


def test_after_a_failed_generate_nothing_is_written_or_uploaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = _site(tmp_path, ("manifest.json",))
    uploads: list[str] = []
    with caplog.at_level(logging.WARNING, logger=docs_task.__name__):
        docs_task.CopyDocs(DocsSettings(location=str(tmp_path / "docs")), "shop")(str(project))
        docs_task.WhenGenerated(lambda path, **_: uploads.append(path), docs_task.SITE, "s3://b/shop")(str(project))
    assert not (tmp_path / "docs").exists()
    assert uploads == []
    assert [record.getMessage() for record in caplog.records] == [
        "dbt docs not written: dbt docs generate wrote no catalog.json, index.html",
        "dbt docs not uploaded: dbt docs generate wrote no catalog.json, index.html",
    ]


def test_a_folder_that_cannot_be_written_fails_the_task(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError, match="a-file"):
        docs_task.CopyDocs(DocsSettings(location=str(tmp_path / "a-file")), "shop")(str(_site(tmp_path)))


def test_bucket_and_folder() -> None:
    assert docs_task.bucket_and_folder("s3://bucket", "shop") == ("bucket", "shop")
    assert docs_task.bucket_and_folder("s3://bucket/a/b/", "shop") == ("bucket", "a/b/shop")
    assert docs_task.bucket_and_folder("abfs://c@acct.dfs.core.windows.net/p", "shop") == ("c", "p/shop")


def test_the_ui_plugin_reads_where_the_task_writes(tmp_path: Path, registered_projects: dict) -> None:
    local = load_settings({**ON, "BLUEPRINT_LOCAL_DIR": str(tmp_path)})
    assert docs_projects(local)["jaffle_shop"]["dir"] == str(tmp_path / "dbt-docs" / "jaffle_shop")
    stored = docs_projects(load_settings({**ON, LOCATION: "abfs://dbt-docs/prod", CONN: "azure_docs"}))
    assert (stored["jaffle_shop"]["dir"], stored["jaffle_shop"]["conn_id"]) == (
        "abfs://dbt-docs/prod/jaffle_shop", "azure_docs",
    )  # fmt: skip
    # Before the task's first run, `make ui` copies the offline docs there, once.
    assert seed_local_docs(local) == [tmp_path / "dbt-docs" / "jaffle_shop"]
    served = tmp_path / "dbt-docs" / "jaffle_shop"
    assert sorted(path.name for path in served.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    json.loads((served / "catalog.json").read_text())
    assert seed_local_docs(local) == [], "what the task wrote is never replaced"


def test_the_readme_s_object_storage_overlay_loads() -> None:
    import yaml

    overlay = yaml.safe_load((REPO_ROOT / "tests" / "fixtures" / "docs_overlay.yaml").read_text())
    docs = load_settings({"BLUEPRINT__DOCS": yaml.safe_dump(overlay["docs"])}).docs
    assert (docs.after_build, docs.scheme, docs.conn_id) == (True, "abfs", "azure_dbt_docs")
    assert docs.project_location("jaffle_shop") == "abfs://dbt-docs/prod/jaffle_shop"
