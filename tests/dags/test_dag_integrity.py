"""DAG integrity: every DAG file imports, renders the expected tasks, and follows the repo's policy.

The DagBag is loaded from an absolute path and each test names the DAGs it expects, so an empty
or partial DagBag fails. No connection or variable is defined (see conftest), and no database.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT

DAGS_DIR = REPO_ROOT / "dags"
EXPECTED_DAG_IDS = {"jaffle_shop_local", "jaffle_shop_local_single_task"}

# jaffle_shop rendered by Cosmos per node: seeds, each model's run then its tests, in dbt's order.
# A test that reads two models (relationships) is its own task after both.
REL_STG_ORDERS = "relationships_stg_orders_customer_id__customer_id__ref_stg_customers__test"
REL_STG_PAYMENTS = "relationships_stg_payments_order_id__order_id__ref_stg_orders__test"
REL_ORDERS = "relationships_orders_customer_id__customer_id__ref_customers__test"
JAFFLE_SHOP_TASKS = {
    "raw_customers_seed": set(),
    "raw_orders_seed": set(),
    "raw_payments_seed": set(),
    "stg_customers.run": {"raw_customers_seed"},
    "stg_customers.test": {"stg_customers.run"},
    "stg_orders.run": {"raw_orders_seed"},
    "stg_orders.test": {"stg_orders.run"},
    "stg_payments.run": {"raw_payments_seed"},
    "stg_payments.test": {"stg_payments.run"},
    REL_STG_ORDERS: {"stg_customers.test", "stg_orders.test"},
    REL_STG_PAYMENTS: {"stg_orders.test", "stg_payments.test"},
    "customers.run": {"stg_customers.test", "stg_orders.test", "stg_payments.test"},
    "customers.test": {"customers.run"},
    "orders.run": {"stg_orders.test", "stg_payments.test"},
    "orders.test": {"orders.run"},
    REL_ORDERS: {"customers.test", "orders.test"},
}
# The watcher DAG per node: its producer's `dbt build` runs shared tests after both models, and
# each model's test task reports them.
JAFFLE_SHOP_WATCHER_TASKS = {
    task_id: upstream for task_id, upstream in JAFFLE_SHOP_TASKS.items() if not task_id.startswith("relationships_")
}
# The same with granularity model (the local default): each model's `dbt build` runs its tests.
JAFFLE_SHOP_MODEL_TASKS = {
    "raw_customers_seed_build": set(),
    "raw_orders_seed_build": set(),
    "raw_payments_seed_build": set(),
    "stg_customers_model_build": {"raw_customers_seed_build"},
    "stg_orders_model_build": {"raw_orders_seed_build"},
    "stg_payments_model_build": {"raw_payments_seed_build"},
    REL_STG_ORDERS: {"stg_customers_model_build", "stg_orders_model_build"},
    REL_STG_PAYMENTS: {"stg_orders_model_build", "stg_payments_model_build"},
    "customers_model_build": {"stg_customers_model_build", "stg_orders_model_build", "stg_payments_model_build"},
    "orders_model_build": {"stg_orders_model_build", "stg_payments_model_build"},
    REL_ORDERS: {"customers_model_build", "orders_model_build"},
}


@pytest.fixture(scope="module")
def dagbag(jaffle_project: Path) -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_every_dag_file_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dags_are_present(dagbag: DagBag) -> None:
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS


def test_dag_files_of_disabled_modes_define_no_dag(dagbag: DagBag) -> None:
    # The base configuration enables only the local mode; every other file must stay silent.
    files_with_dags = {Path(dag.fileloc).stem for dag in dagbag.dags.values()}
    assert files_with_dags == EXPECTED_DAG_IDS
    assert len(list(DAGS_DIR.glob("*.py"))) > len(EXPECTED_DAG_IDS)


def test_dag_files_raise_no_warnings_of_their_own(dagbag: DagBag) -> None:
    # Cosmos 1.15 itself warns about a deprecated Airflow import; ours must not add any.
    ours = {
        file: [warning for warning in warnings if "/site-packages/" not in warning]
        for file, warnings in dagbag.captured_warnings.items()
    }
    assert {file: warnings for file, warnings in ours.items() if warnings} == {}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_no_cycles(dagbag: DagBag, dag_id: str) -> None:
    dagbag.dags[dag_id].check_cycle()  # raises on a cycle


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_ownership_tags_and_retry_policy(dagbag: DagBag, dag_id: str) -> None:
    policy = load_settings().dags
    dag = dagbag.dags[dag_id]
    assert dag.tags == set(policy.tags)
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner == policy.owner, task.task_id
        assert task.retries == policy.retries, task.task_id
        assert task.retry_delay.total_seconds() == policy.retry_delay_seconds, task.task_id


def test_local_dag_renders_every_model_with_its_tests_in_dependency_order(dagbag: DagBag) -> None:
    dag = dagbag.dags["jaffle_shop_local"]
    rendered = {task_id: set(task.upstream_task_ids) for task_id, task in dag.task_dict.items()}
    assert rendered == JAFFLE_SHOP_MODEL_TASKS


def test_single_task_dag_is_one_dbt_build(dagbag: DagBag) -> None:
    dag = dagbag.dags["jaffle_shop_local_single_task"]
    assert list(dag.task_dict) == ["dbt_build"]
    assert dag.task_dict["dbt_build"].base_cmd == ["build"]


def test_dags_parse_without_running_dbt(jaffle_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifest-first: parsing must not start dbt, so a dbt that cannot run changes nothing."""
    monkeypatch.setenv("BLUEPRINT__DBT__EXECUTABLE", "/nonexistent/dbt")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == EXPECTED_DAG_IDS


def _copy_project(jaffle_project: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "jaffle_shop"
    shutil.copytree(jaffle_project, copy, ignore=shutil.ignore_patterns("logs", "compiled", "run"))
    return copy


def _import_errors_by_file(bag: DagBag) -> dict[str, str]:
    return {Path(file).name: error for file, error in bag.import_errors.items()}


def _only_import_error(bag: DagBag, failing: set[str] | None = None) -> str:
    """The error of jaffle_shop_local.py, after checking exactly the `failing` files failed."""
    errors = _import_errors_by_file(bag)
    assert set(errors) == (failing or {f"{dag_id}.py" for dag_id in EXPECTED_DAG_IDS})
    return errors["jaffle_shop_local.py"]


def test_missing_manifest_fails_parse_with_the_fix(
    jaffle_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _copy_project(jaffle_project, tmp_path)
    (project / "target" / "manifest.json").unlink()
    monkeypatch.setenv("BLUEPRINT__DBT__PROJECT_DIR", str(project))
    error = _only_import_error(DagBag(dag_folder=str(DAGS_DIR)))
    last_line = error.strip().splitlines()[-1]
    assert last_line.startswith("include.blueprint.manifest.ManifestNotReady: dbt manifest ")
    assert "is missing: run `make manifest`" in last_line
    assert "/cosmos/" not in error  # it fails before Cosmos is involved


def test_stale_manifest_fails_parse_naming_the_changed_file(
    jaffle_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _copy_project(jaffle_project, tmp_path)
    manifest = project / "target" / "manifest.json"
    changed = project / "models" / "marts" / "orders.sql"
    changed.write_text(changed.read_text() + "\n-- edited after the last dbt parse\n")
    manifest_time = manifest.stat().st_mtime
    os.utime(changed, (manifest_time + 5, manifest_time + 5))
    monkeypatch.setenv("BLUEPRINT__DBT__PROJECT_DIR", str(project))
    error = _only_import_error(DagBag(dag_folder=str(DAGS_DIR)))
    assert "is older than models/marts/orders.sql: run `make manifest`" in error.strip().splitlines()[-1]


def test_invalid_settings_fail_parse_with_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUEPRINT__DAGS__RETRIES", "many")
    monkeypatch.setenv("BLUEPRINT__WAREHOUSE__CONN_ID", "")
    # Settings are read before a file knows whether its mode is enabled, so every file fails.
    every_file = {path.name for path in DAGS_DIR.glob("*.py")}
    error = _only_import_error(DagBag(dag_folder=str(DAGS_DIR)), failing=every_file)
    assert "invalid blueprint configuration (2 problem(s))" in error
    assert "dags.retries: " in error
    assert "[BLUEPRINT__DAGS__RETRIES]" in error
    assert "warehouse.conn_id: " in error
    assert "[BLUEPRINT__WAREHOUSE__CONN_ID]" in error
