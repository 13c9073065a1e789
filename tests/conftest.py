"""Shared fixtures. Airflow reads its configuration when first imported, so this module points it
at a throwaway AIRFLOW_HOME and clears connections, variables and overrides before any test runs:
the DAGs must parse with no connection or variable defined."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import leaks

REPO_ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.cpu_log", "tests.schedule"]  # the CPU log; the parallel order and --shard
leaks.mark_session()  # before anything starts: every process of the session inherits the mark
_SHARED_TEMP = Path(tempfile.gettempdir())
_WORKER_TEMP = leaks.isolate_worker_temp()  # under `pytest -n N`: this worker's own TMPDIR
_TEST_HOME = Path(tempfile.mkdtemp(prefix="blueprint-tests-"))

for _name in list(os.environ):
    if _name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "POSTGRES_", "BLUEPRINT")):
        del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": str(_TEST_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(_TEST_HOME / "cosmos-cache"),
        "BLUEPRINT_LOCAL_DIR": str(_TEST_HOME / "local"),
    }
)
# jaffle_shop is the test suite's own project: a fork may hide it from its deployment
# (`enabled: false`), but the tests always build it.
if (REPO_ROOT / "include" / "blueprint" / "config" / "projects" / "jaffle_shop.yaml").exists():
    os.environ["BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED"] = "true"

from include.blueprint import settings as settings_module  # noqa: E402
from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest  # noqa: E402
from tools import generate_data  # noqa: E402
from tools.local_env import QUIET_DBT  # noqa: E402
from tools.manifest import parse_project  # noqa: E402
from tools.postgres import ConnectionSettings, LocalPostgres, free_port  # noqa: E402

JAFFLE_PROJECT = REPO_ROOT / "dbt" / "jaffle_shop"
SYNTHETIC_MODELS = 12  # the generated project adopted_fork adopts: three layers, kept small for CI


WARM_DBT_SERVER = "include/blueprint/warm_dbt/server.py"  # in this checkout or a fork of it


@pytest.fixture(scope="session", autouse=True)
def _leave_nothing_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session's leak check (tests/leaks.py). Set up before any other fixture, so torn down
    after every other one: it sees what they left. The session's AIRFLOW_HOME, Cosmos cache and
    local state go, and so do the warm dbt servers its DAG runs started (a server outlives its
    task by design, for the next task; the session stops them instead of waiting for their idle
    timeout). Anything else still there fails the run, named."""
    before = leaks.take_snapshot(*([_SHARED_TEMP] if _WORKER_TEMP else []))
    yield
    own_paths = [str(tmp_path_factory.getbasetemp()), str(_TEST_HOME), *([str(_WORKER_TEMP)] if _WORKER_TEMP else [])]
    try:
        leaks.stop_new_processes(before, WARM_DBT_SERVER, own_paths)
        left = leaks.wait_for_leaks(before, own_paths)
    finally:
        _remove_session_folders()
    if left:
        pytest.fail(leaks.report(left), pytrace=False)


def _remove_session_folders() -> None:
    shutil.rmtree(_TEST_HOME, ignore_errors=True)
    if _WORKER_TEMP is not None and _WORKER_TEMP != _SHARED_TEMP:
        shutil.rmtree(_WORKER_TEMP, ignore_errors=True)  # the worker's own; a nested session keeps it


def pytest_unconfigure(config: pytest.Config) -> None:
    """Also when no test ran (--collect-only, everything deselected, an error while collecting)."""
    _remove_session_folders()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are cached per process; tests that change the environment need a clean cache."""
    settings_module.settings.cache_clear()
    yield
    settings_module.settings.cache_clear()


@pytest.fixture(scope="session")
def jaffle_project() -> Path:
    """The jaffle_shop project with the default (scale 1) data and a fresh manifest."""
    generate_data.generate(JAFFLE_PROJECT / "seeds", scale=1)
    try:
        require_fresh_manifest(JAFFLE_PROJECT, JAFFLE_PROJECT / "target" / "manifest.json")
    except ManifestNotReady:
        parse_project(JAFFLE_PROJECT)
    return JAFFLE_PROJECT


@pytest.fixture(scope="session")
def registered_projects(jaffle_project: Path) -> dict[str, Path]:
    """Every registered dbt project (jaffle_shop and any the team adopted), with a fresh manifest."""
    from tools.manifest import refresh

    config = settings_module.load_settings()
    for project in config.projects.values():
        refresh(config, project)
    return {name: project.project_dir for name, project in config.projects.items()}


@pytest.fixture(scope="session")
def adopted_fork(tmp_path_factory: pytest.TempPathFactory, jaffle_project: Path) -> Path:
    """A fork of this repository into which a team adopted two projects with `make adopt`'s
    command: `acme` (tests/fixtures/dbt_projects) and a generated `synthetic` one."""
    from tests.fixtures.dbt_projects import ACME_PROJECT, ACME_REGISTRATION
    from tests.forks import make_fork, run_in
    from tools.synthetic_project import write_project

    fork = make_fork(tmp_path_factory.mktemp("fork"))
    synthetic = tmp_path_factory.mktemp("team") / "synthetic"
    write_project(synthetic, SYNTHETIC_MODELS)
    for source in (ACME_PROJECT, synthetic):
        adopted = run_in(fork, "-m", "tools.adopt", str(source))
        assert adopted.returncode == 0, f"adopting {source.name}:\n{adopted.stdout}{adopted.stderr}"
    # acme's DAGs as a team would declare them: the README's example
    registrations = fork / "include" / "blueprint" / "config" / "projects"
    shutil.copy(ACME_REGISTRATION, registrations / "acme.yaml")
    manifests = run_in(fork, "-m", "tools.manifest")
    assert manifests.returncode == 0, manifests.stderr
    # as adopt advises: the blueprint's example stays registered for the tests, hidden from the deployment
    registration = fork / "include" / "blueprint" / "config" / "projects" / "jaffle_shop.yaml"
    registration.write_text(
        registration.read_text().replace("    profile: jaffle_shop\n", "    profile: jaffle_shop\n    enabled: false\n")
    )
    return fork


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for this test session, in a temporary folder, on a free port,
    without fsync: its data is thrown away at the end (tests/faults.py keeps the durable defaults
    for the servers its tests restart)."""
    root = Path(tempfile.mkdtemp(prefix="blueprint-tests-pg-"))
    root.chmod(0o755)  # as root the server runs as `nobody`, which must reach its folder
    server = None
    try:
        server = LocalPostgres(root, free_port(), durable=False)
        leaks.SESSION_PORTS.add(server.port)
        server.start()
        yield server
    finally:
        if server is not None:
            server.destroy()  # stops the server (if it started) and removes its folder
        shutil.rmtree(root, ignore_errors=True)  # the folder asked for, if the server used another


@pytest.fixture(scope="session")
def postgres(postgres_server: LocalPostgres) -> ConnectionSettings:
    """How to reach the session's server, database jaffle_shop."""
    return postgres_server.settings()


def dbt_env(database: ConnectionSettings, schema: str) -> dict[str, str]:
    """The environment a dbt CLI run gets: the POSTGRES_* contract plus no usage tracking."""
    connection = ConnectionSettings(**{**database.__dict__, "schema": schema})
    return {**os.environ, **connection.as_env(), **QUIET_DBT}


MART_FIGURES = (
    "customers_rows", "customers_with_orders", "max_number_of_orders", "customer_lifetime_value_total",
    "orders_rows", "orders_amount_total", "first_order_date", "most_recent_order_date",
)  # fmt: skip


def actual_marts(database: ConnectionSettings, schema: str) -> dict[str, object]:
    """The same figures as tools.generate_data.expected_marts, read from the built marts."""
    customers = database.query(
        f"select count(*), count(*) filter (where number_of_orders > 0), max(number_of_orders),"
        f" sum(customer_lifetime_value) from {schema}.customers",
    )[0]
    orders = database.query(f"select count(*), sum(amount), min(order_date), max(order_date) from {schema}.orders")[0]
    return {
        "customers_rows": customers[0],
        "customers_with_orders": customers[1],
        "max_number_of_orders": customers[2],
        "customer_lifetime_value_total": customers[3],
        "orders_rows": orders[0],
        "orders_amount_total": orders[1],
        "first_order_date": orders[2],
        "most_recent_order_date": orders[3],
    }


def expected_marts(scale: int = 1) -> dict[str, object]:
    """tools.generate_data's prediction, restricted to the figures actual_marts reads."""
    expected = generate_data.expected_marts(scale)
    return {key: expected[key] for key in MART_FIGURES}
