"""DAG integrity: every DAG file imports, every declared DAG renders its selection in the
manifest's dependency order, and follows the repo's policy.

What is expected comes from the settings (the declared DAGs) and each project's manifest, so these
tests hold for any adopted project; jaffle_shop's exact task lists are one golden case. The DagBag
is loaded from an absolute path and compared with the declarations, so an empty or partial
DagBag fails. No connection or variable is defined (see conftest), and no database.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from include.blueprint.dag_specs import dag_specs
from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.dags.expectations import problems_of
from tools.adopt import SCHEMA_MACRO

DAGS_DIR = REPO_ROOT / "dags"
DECLARED = {spec.dag_id: spec for spec in dag_specs(load_settings())}

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
def dagbag(registered_projects: dict[str, Path]) -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_every_dag_file_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_the_declared_dags_and_only_they_are_present(dagbag: DagBag) -> None:
    assert DECLARED, "the settings declare no DAG"
    assert set(dagbag.dag_ids) == set(DECLARED)


def test_only_the_files_of_enabled_modes_define_dags(dagbag: DagBag) -> None:
    enabled = {f"dbt_{mode}" for mode in load_settings().execution.enabled_modes}
    files_with_dags = {Path(dag.fileloc).stem for dag in dagbag.dags.values()}
    assert files_with_dags
    assert files_with_dags <= enabled
    assert len(list(DAGS_DIR.glob("*.py"))) > len(files_with_dags)


def test_dag_files_raise_no_warnings_of_their_own(dagbag: DagBag) -> None:
    # Cosmos 1.15 itself warns about a deprecated Airflow import; ours must not add any.
    ours = {
        file: [warning for warning in warnings if "/site-packages/" not in warning]
        for file, warnings in dagbag.captured_warnings.items()
    }
    assert {file: warnings for file, warnings in ours.items() if warnings} == {}


@pytest.mark.parametrize("dag_id", sorted(DECLARED))
def test_every_dag_builds_its_selection_in_dependency_order_under_the_policy(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    dag.check_cycle()  # raises on a cycle
    assert problems_of(dag, DECLARED[dag_id]) == []


@pytest.mark.skipif("jaffle_shop_local" not in DECLARED, reason="jaffle_shop is not registered here")
def test_jaffle_shop_local_renders_every_model_with_its_tests_in_dependency_order(dagbag: DagBag) -> None:
    dag = dagbag.dags["jaffle_shop_local"]
    rendered = {task_id: set(task.upstream_task_ids) for task_id, task in dag.task_dict.items()}
    assert rendered == JAFFLE_SHOP_MODEL_TASKS


@pytest.mark.skipif("jaffle_shop_local_single_task" not in DECLARED, reason="jaffle_shop is not registered here")
def test_jaffle_shop_single_task_dag_is_one_dbt_build(dagbag: DagBag) -> None:
    dag = dagbag.dags["jaffle_shop_local_single_task"]
    assert list(dag.task_dict) == ["dbt_build"]
    assert dag.task_dict["dbt_build"].base_cmd == ["build"]


def test_dags_parse_without_running_dbt(registered_projects: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifest-first: parsing must not start dbt, so a dbt that cannot run changes nothing."""
    monkeypatch.setenv("BLUEPRINT__DBT__EXECUTABLE", "/nonexistent/dbt")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(DECLARED)


def test_every_project_creates_its_schema_safely_under_concurrent_tasks(registered_projects: dict[str, Path]) -> None:
    """A project's own postgres__create_schema (make adopt adds tools/adopt_files/'s): with dbt's,
    the first run's concurrent tasks on a fresh schema fail on a duplicate key in pg_namespace."""
    config = load_settings()
    manifests = {name: json.loads(config.projects[name].manifest_path.read_text()) for name in registered_projects}
    without = [
        name
        for name, manifest in manifests.items()
        if not any(  # the root project's, which dbt prefers over the adapter's
            macro["name"] == "postgres__create_schema" and macro["package_name"] == manifest["metadata"]["project_name"]
            for macro in manifest["macros"].values()
        )
    ]
    assert without == [], (
        f"{', '.join(without)}: no postgres__create_schema of the project's own. Copy "
        "tools/adopt_files/blueprint_create_schema.sql into its macros/ (`make adopt` does), then `make manifest`"
    )
    outdated = [
        copy
        for project_dir in registered_projects.values()
        for copy in project_dir.rglob(SCHEMA_MACRO.name)
        if "dbt_packages" not in copy.parts and copy.read_bytes() != SCHEMA_MACRO.read_bytes()
    ]
    assert outdated == [], f"{outdated}: not the blueprint's current {SCHEMA_MACRO} (`make adopt` again refreshes it)"


@pytest.fixture
def project_copy(registered_projects: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the first declared DAG's project, registered in its place."""
    name = next(iter(DECLARED.values())).project_name
    copy = tmp_path / name
    shutil.copytree(registered_projects[name], copy, ignore=shutil.ignore_patterns("logs", "compiled", "run"))
    monkeypatch.setenv(f"BLUEPRINT__PROJECTS__{name.upper()}__PROJECT_DIR", str(copy))
    return copy


def _only_import_error(bag: DagBag, failing: set[str] | None = None) -> str:
    """The error of the first enabled mode's file, after checking exactly the `failing` files failed."""
    errors = {Path(file).name: error for file, error in bag.import_errors.items()}
    with_dags = failing or {f"dbt_{spec.mode}.py" for spec in DECLARED.values()}
    assert set(errors) == with_dags
    return errors[f"dbt_{next(iter(DECLARED.values())).mode}.py"]


def test_missing_manifest_fails_parse_with_the_fix(project_copy: Path) -> None:
    (project_copy / "target" / "manifest.json").unlink()
    error = _only_import_error(DagBag(dag_folder=str(DAGS_DIR)))
    assert "invalid DAG declarations" in error
    assert "dbt manifest " in error
    assert "is missing: run `make manifest`" in error
    assert "/cosmos/" not in error  # it fails before Cosmos is involved


def test_stale_manifest_fails_parse_naming_the_changed_file(project_copy: Path) -> None:
    manifest = project_copy / "target" / "manifest.json"
    changed = next(path for path in sorted((project_copy / "models").rglob("*.sql")))
    changed.write_text(changed.read_text() + "\n-- edited after the last dbt parse\n")
    manifest_time = manifest.stat().st_mtime
    os.utime(changed, (manifest_time + 5, manifest_time + 5))
    error = _only_import_error(DagBag(dag_folder=str(DAGS_DIR)))
    assert f"is older than {changed.relative_to(project_copy)}: run `make manifest`" in error


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
