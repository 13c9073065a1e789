"""Run artifacts without a DAG run: the settings and their refusals (one line each, with where
they were set), the checks at DAG import, the summary of what dbt ran, the retention sweep, and
the Cosmos callback copying a try's files, including through ObjectStoragePath and into a place
it cannot write. tests/integration/test_artifacts.py runs it for real."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from include.blueprint import alerts, artifacts, storage
from include.blueprint.artifact_settings import ArtifactSettings, environment_problems
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import REPO_ROOT, BlueprintConfigError, load_settings

LOCATION = "BLUEPRINT__ARTIFACTS__LOCATION"
DAY = 86400


def test_the_default_is_a_folder_under_the_local_dir_and_relative_paths_are_the_repository_s(tmp_path: Path) -> None:
    loaded = load_settings({"BLUEPRINT_LOCAL_DIR": str(tmp_path)}).artifacts
    assert (loaded.enabled, loaded.location, loaded.conn_id, loaded.retention_days) == (
        True, str(tmp_path / "dbt-artifacts"), None, 30,
    )  # fmt: skip
    assert load_settings({}).artifacts.location == str(REPO_ROOT / ".local" / "dbt-artifacts")
    assert load_settings({LOCATION: "var/artifacts"}).artifacts.location == str(REPO_ROOT / "var" / "artifacts")
    bucket = load_settings({LOCATION: "s3://bucket/dbt", "BLUEPRINT__ARTIFACTS__CONN_ID": "aws_dbt"}).artifacts
    assert (bucket.location, bucket.scheme, bucket.local_folder) == ("s3://bucket/dbt", "s3", None)
    assert load_settings({LOCATION: "file:///srv/dbt"}).artifacts.local_folder == Path("/srv/dbt")


REFUSED = {
    "object storage without a connection": (
        {LOCATION: "gs://bucket/dbt"},
        "artifacts.conn_id: required for the gs:// location: name the Airflow connection that can write there "
        f"[{LOCATION}]",
    ),
    "an unknown scheme": (
        {LOCATION: "ftp://host/dbt"},
        "artifacts.location: unknown scheme ftp://; use a local folder, file://, or one of s3://",
    ),
    "a connection for a local folder": (
        {"BLUEPRINT__ARTIFACTS__CONN_ID": "aws_dbt"},
        "artifacts.conn_id: only object storage locations take a connection; remove it or use a bucket URL "
        "[BLUEPRINT__ARTIFACTS__CONN_ID]",
    ),
    "an unknown key": ({"BLUEPRINT__ARTIFACTS__RETENTION": "7"}, "artifacts.retention: unknown setting"),
    "a negative retention": ({"BLUEPRINT__ARTIFACTS__RETENTION_DAYS": "-1"}, "artifacts.retention_days: Input should"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_each_bad_setting_is_refused_in_one_line_naming_where_it_was_set(case: str) -> None:
    environ, expected = REFUSED[case]
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.startswith("invalid blueprint configuration (1 problem(s))")
    assert expected in message.splitlines()[1]


def test_disabled_artifacts_need_no_valid_location(tmp_path: Path) -> None:
    loaded = load_settings({LOCATION: "gs://bucket/dbt", "BLUEPRINT__ARTIFACTS__ENABLED": "false"}).artifacts
    assert not loaded.enabled
    assert environment_problems(loaded) == []


def test_the_machine_checks_a_file_in_the_way_a_read_only_folder_and_a_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    assert environment_problems(ArtifactSettings(location=str(tmp_path / "new" / "folder"))) == []
    assert environment_problems(ArtifactSettings(location=str(tmp_path / "a-file" / "dbt"))) == [
        f"artifacts.location: {tmp_path / 'a-file'} is not a folder; choose another location"
    ]
    monkeypatch.setattr(storage.os, "access", lambda path, mode: path != tmp_path)
    assert environment_problems(ArtifactSettings(location=f"file://{tmp_path}/dbt")) == [
        f"artifacts.location: {tmp_path} is not writable by this user (uid {os.getuid()}); "
        "choose a writable folder or object storage"
    ]
    monkeypatch.setattr(storage.importlib.util, "find_spec", lambda name: None)
    assert environment_problems(ArtifactSettings(location="s3://bucket/dbt", conn_id="aws")) == [
        "artifacts.location: s3:// needs the s3fs package (apache-airflow-providers-amazon[s3fs]), "
        "which is not installed"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused_for_real(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        assert "is not writable by this user" in environment_problems(ArtifactSettings(location=str(tmp_path / "x")))[0]
    finally:
        tmp_path.chmod(0o700)


def test_an_unusable_location_fails_the_dag_import_in_one_line(registered_projects: dict, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BlueprintConfigError) as caught:
        declared_dags("local", load_settings({LOCATION: str(tmp_path / "a-file" / "dbt")}))
    assert str(caught.value).splitlines() == [
        "dbt run artifacts cannot be kept (1 problem(s)):",
        f"  - artifacts.location: {tmp_path / 'a-file'} is not a folder; choose another location",
    ]


def test_every_dbt_task_gets_the_keeper_after_the_alerts_reader(registered_projects: dict) -> None:
    alert = {"BLUEPRINT__ALERTS__ON_FAILURE": '[{"kind": "webhook", "conn_id": "x"}]'}
    for dag in declared_dags("local", load_settings(alert)).values():
        for task in dag.tasks:
            first, keeper = task.callback
            assert first is alerts.remember_dbt_failures, task.task_id
            assert isinstance(keeper, artifacts.KeepArtifacts), task.task_id
    for dag in declared_dags("local", load_settings({"BLUEPRINT__ARTIFACTS__ENABLED": "false"})).values():
        assert all(not task.callback for task in dag.tasks)


RESULTS = [
    {"unique_id": "seed.shop.raw", "status": "success"},
    {"unique_id": "model.shop.orders", "status": "error", "relation_name": '"db"."s"."orders"',
     "message": "\x1b[31mDatabase Error in model orders (models/orders.sql)\x1b[0m\n  relation does not exist"},
    {"unique_id": "test.shop.unique_orders_id.1a", "status": "fail", "relation_name": None,
     "message": "Got 2 results, configured to fail if != 0"},
    {"unique_id": "test.shop.not_null_orders_id.2b", "status": "warn", "message": "Got 1 result"},
    {"unique_id": "test.shop.accepted_values.3c", "status": "pass"},
    {"unique_id": "model.shop.customers", "status": "skipped"},
    {"unique_id": "model.shop.empty", "status": "no-op"},
]  # fmt: skip
MANIFEST = {
    "nodes": {
        "model.shop.orders": {"compiled_path": "target/compiled/shop/models/orders.sql"},
        "test.shop.unique_orders_id.1a": {
            "compiled_path": "target/compiled/shop/models/schema.yml/unique_orders_id.sql"
        },
    }
}


def test_the_summary_counts_every_status_and_names_each_failed_node_with_its_compiled_sql() -> None:
    failed = ["model.shop.orders", "test.shop.unique_orders_id.1a", "model.shop.gone"]
    assert artifacts.summary_lines(RESULTS, artifacts.compiled_paths(MANIFEST, failed)) == [
        "dbt summary: 7 node(s): 1 success, 1 pass, 1 warn, 1 error, 1 fail, 1 skip, 1 no-op",
        "dbt error: model.shop.orders: Database Error in model orders (models/orders.sql): relation does not "
        'exist (relation "db"."s"."orders"; compiled SQL target/compiled/shop/models/orders.sql)',
        "dbt fail: test.shop.unique_orders_id.1a: Got 2 results, configured to fail if != 0 "
        "(compiled SQL target/compiled/shop/models/schema.yml/unique_orders_id.sql)",
    ]
    never_compiled = [{"unique_id": "model.shop.x", "status": "runtime error", "message": ""}]
    assert artifacts.summary_lines(never_compiled, {})[1:] == [
        "dbt runtime error: model.shop.x: no message (compiled SQL not compiled)"
    ]


def test_a_lost_warehouse_connection_is_one_line_before_the_failed_nodes() -> None:
    # run_results.json's messages after the warehouse restarted under a model and under a test
    results = [
        {"unique_id": "model.shop.orders", "status": "error",
         "message": "Database Error in model orders (models/orders.sql)\n  server closed the connection "
                    "unexpectedly\n\tThis probably means the server terminated abnormally"},
        {"unique_id": "test.shop.unique_id.1a", "status": "error",
         "message": 'Database Error in test unique_id (models/x.yml)\n  connection to server at "127.0.0.1", '
                    "port 5432 failed: FATAL:  the database system is shutting down"},
        {"unique_id": "model.shop.customers", "status": "skipped", "message": "the database system is starting up"},
    ]  # fmt: skip
    lines = artifacts.summary_lines(results, {})
    assert lines[1] == (
        "warehouse connection lost (server closed the connection unexpectedly) in model.shop.orders, "
        "test.shop.unique_id.1a: the warehouse restarted or the network dropped; dbt's open transaction was "
        "rolled back, and the task's retry runs it again"
    )
    assert lines[2] == (
        "dbt error: model.shop.orders: Database Error in model orders (models/orders.sql): server closed the "
        "connection unexpectedly (compiled SQL not compiled)"
    )
    assert artifacts.lost_connection_line(RESULTS) is None  # a wrong model is not a lost connection


def _run(root: Path, run_id: str, *days_ago: float) -> Path:
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    for index, days in enumerate(days_ago):
        written = root / run_id / f"task_{index}" / "try_1" / "dbt.log"
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text("")
        os.utime(written, (now - days * DAY, now - days * DAY))
    return root / run_id


def test_the_sweep_deletes_the_runs_whose_newest_artifact_is_past_the_retention(tmp_path: Path) -> None:
    from fsspec.implementations.local import LocalFileSystem

    dag_root = tmp_path / "my_dag"
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    old, recent = _run(dag_root, "scheduled__old", 31, 40), _run(dag_root, "scheduled__recent", 2)
    retried_lately = _run(dag_root, "manual__retried", 45, 1)  # an old try, retried yesterday
    assert artifacts.sweep(LocalFileSystem(), str(dag_root), 30, now) == ["scheduled__old"]
    assert (old.exists(), recent.exists(), retried_lately.exists()) == (False, True, True)
    assert artifacts.sweep(LocalFileSystem(), str(tmp_path / "never_ran"), 30, now) == []


def test_object_storage_times_are_read_in_each_filesystem_s_own_key() -> None:
    moment = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    for info in ({"mtime": moment.timestamp()}, {"LastModified": moment}, {"last_modified": moment},
                 {"updated": "2026-11-30T12:00:00Z"}):  # fmt: skip
        assert artifacts._modified(info) == moment.timestamp(), info
    assert artifacts._modified({"size": 3}) is None


def _project(tmp_path: Path, results: list[dict]) -> Path:
    project = tmp_path / "project-copy"
    (project / "target").mkdir(parents=True)
    (project / "logs").mkdir()
    (project / "target" / "run_results.json").write_text(json.dumps({"results": results}))
    (project / "target" / "manifest.json").write_text(json.dumps(MANIFEST))
    (project / "logs" / "dbt.log").write_text("dbt deps ...\ndbt build ...\n")
    return project


def _context() -> dict:
    ti = SimpleNamespace(
        dag_id="shop_local", run_id="manual__2026-11-30T12:00:00+00:00", task_id="orders", try_number=2
    )
    return {"ti": ti}


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_the_callback_keeps_the_try_s_files_and_ends_with_the_summary(
    tmp_path: Path, scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain folder through fsspec's local filesystem, file:// through ObjectStoragePath."""
    project = _project(tmp_path, RESULTS[:2])
    stale = _run(tmp_path / "kept" / "shop_local", "scheduled__stale", 90)
    keeper = artifacts.KeepArtifacts(ArtifactSettings(location=f"{scheme}{tmp_path / 'kept'}", retention_days=30))
    with caplog.at_level(logging.INFO, logger=artifacts.__name__):
        keeper(str(project), context=_context())
    kept = tmp_path / "kept" / "shop_local" / "manual__2026-11-30T12:00:00+00:00" / "orders" / "try_2"
    assert sorted(path.name for path in kept.iterdir()) == ["dbt.log", "manifest.json", "run_results.json"]
    assert (kept / "dbt.log").read_text() == "dbt deps ...\ndbt build ...\n"
    assert not stale.exists()
    messages = [record.getMessage() for record in caplog.records]
    assert messages[-3:] == [
        f"dbt artifacts kept in {scheme}{tmp_path / 'kept'}/shop_local/manual__2026-11-30T12:00:00+00:00/orders/try_2",
        "dbt summary: 2 node(s): 1 success, 0 pass, 0 warn, 1 error, 0 fail, 0 skip",
        "dbt error: model.shop.orders: Database Error in model orders (models/orders.sql): relation does not "
        'exist (relation "db"."s"."orders"; compiled SQL target/compiled/shop/models/orders.sql)',
    ]


def test_a_location_that_cannot_be_written_costs_one_warning_and_the_summary_still_comes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = _project(tmp_path, RESULTS[:1])
    (project / "target" / "manifest.json").unlink()  # dbt stopped before writing it: the rest is kept
    (tmp_path / "a-file").write_text("")
    with caplog.at_level(logging.INFO, logger=artifacts.__name__):
        artifacts.KeepArtifacts(ArtifactSettings(location=str(tmp_path / "a-file")))(str(project), context=_context())
        artifacts.KeepArtifacts(ArtifactSettings(location=str(tmp_path / "ok")))(str(project), context=_context())
    warning, summary, kept, _ = caplog.records
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith(f"dbt artifacts not kept in {tmp_path / 'a-file'}: ")
    assert summary.getMessage() == "dbt summary: 1 node(s): 1 success, 0 pass, 0 warn, 0 error, 0 fail, 0 skip"
    assert kept.getMessage().endswith("/orders/try_2 (not written by dbt: manifest.json)")


def test_without_run_results_the_summary_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=artifacts.__name__):
        artifacts.KeepArtifacts(ArtifactSettings(location=str(tmp_path / "kept")))(str(tmp_path), context=_context())
    assert caplog.records[-1].getMessage() == "dbt summary: no run_results.json (dbt stopped before running any node)"
    assert not any((tmp_path / "kept").rglob("*.json"))


def test_the_readme_s_object_storage_overlay_loads() -> None:
    import yaml

    overlay = yaml.safe_load((REPO_ROOT / "tests" / "fixtures" / "artifacts_overlay.yaml").read_text())
    loaded = load_settings({"BLUEPRINT__ARTIFACTS": yaml.safe_dump(overlay["artifacts"])}).artifacts
    assert (loaded.scheme, loaded.conn_id, loaded.retention_days) == ("abfs", "azure_dbt_artifacts", 14)
    assert environment_problems(loaded) == []  # adlfs comes with the Azure provider the prod image installs
