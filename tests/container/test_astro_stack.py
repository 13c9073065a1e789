"""The deploy image, run the way `astro dev start` runs it: the root Dockerfile built on the Astro
Runtime stand-in (ci/build-astro-image.sh), the stack of docker/compose.yaml started through
pytest-docker's docker_services (metadata PostgreSQL, airflow db migrate + airflow_settings.yaml,
API server, scheduler, DAG processor, triggerer). What a team ships is what runs here: DAGs parsed
by the image's own DAG processor, a run triggered through the REST API, and the prod overlay's ACI
DAG run from inside the scheduler container against the ACI emulator."""

from __future__ import annotations

import os
import shlex
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from include.blueprint.dag_specs import dag_specs
from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT, actual_marts, expected_marts
from tests.container.test_aci_mode import assert_password_only_as_secure_value, received_groups, registry_env
from tools.aci_emulator import AciEmulator
from tools.airflow_api import AirflowApi
from tools.airflow_settings import with_connection
from tools.postgres import ConnectionSettings
from tools.stack import throwaway_stack_env

pytestmark = [pytest.mark.integration, pytest.mark.container]

WAREHOUSE_DATABASE = "astro_stack"
SETTINGS_FILE = REPO_ROOT / "airflow_settings.yaml"
ACI_DAG = "jaffle_shop_azure_container_instance"
# The test session's own switches: only triggered runs (no scheduled run racing them into the same
# schema), and jaffle_shop shown even where a fork hides it from its deployment.
TEST_ENV = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED": "true"}


@pytest.fixture(scope="module")
def warehouse(postgres: ConnectionSettings) -> ConnectionSettings:
    """A database of its own on the session's server, for the stack's dbt runs."""
    with closing(postgres.connect()) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"drop database if exists {WAREHOUSE_DATABASE}")
            cursor.execute(f"create database {WAREHOUSE_DATABASE}")
    return ConnectionSettings(**{**postgres.__dict__, "database": WAREHOUSE_DATABASE})


@pytest.fixture(scope="module")
def docker_compose_command() -> str:
    result = subprocess.run(["bash", "ci/stack.sh", "compose"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def docker_compose_project_name() -> str:
    return f"blueprint-test-{os.getpid()}"


@pytest.fixture(scope="module")
def docker_setup() -> list[str]:
    return ["up -d"]  # the images are built by stack_images, with the repository's own script


@pytest.fixture(scope="module")
def docker_cleanup() -> list[str]:
    return ["down --volumes --timeout 20"]


@pytest.fixture(scope="module")
def stack_images(docker_engine: None, dbt_image: str, docker_compose_command: str) -> None:
    result = subprocess.run(["bash", "ci/stack.sh", "images"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=1800)  # fmt: skip
    assert result.returncode == 0, f"ci/stack.sh images failed:\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def docker_compose_file(stack_images: None, warehouse: ConnectionSettings,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # fmt: skip
    """docker/compose.yaml, with this test's ports, secrets, settings and .env in the environment
    pytest-docker runs compose with (and restored afterwards)."""
    folder = tmp_path_factory.mktemp("stack")
    stack_env = throwaway_stack_env(folder, TEST_ENV)
    conn_id = load_settings({}).warehouse.conn_id
    with_connection(SETTINGS_FILE, conn_id, warehouse, Path(stack_env["STACK_SETTINGS_FILE"]))
    with pytest.MonkeyPatch.context() as environment:
        for name, value in stack_env.items():
            environment.setenv(name, value)
        yield str(REPO_ROOT / "docker" / "compose.yaml")


@pytest.fixture(scope="module")
def stack(docker_services: object, docker_compose_file: str, docker_compose_command: str,
          docker_compose_project_name: str) -> AirflowApi:  # fmt: skip
    api = AirflowApi(f"http://127.0.0.1:{os.environ['STACK_AIRFLOW_PORT']}")
    compose = [*shlex.split(docker_compose_command), "-f", docker_compose_file, "-p", docker_compose_project_name]
    try:
        docker_services.wait_until_responsive(check=api.healthy, timeout=240, pause=1)  # type: ignore[attr-defined]
    except Exception:
        logs = subprocess.run([*compose, "logs", "--tail", "40"], capture_output=True, text=True).stdout
        pytest.fail(f"the stack's API server did not answer within 240 s; compose logs:\n{logs[-6000:]}")
    return api


def scheduler_container(project: str) -> str:
    result = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", "label=com.docker.compose.service=scheduler"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (container,) = result.stdout.split()
    return container


def test_the_image_parses_every_dag_of_the_deployment_without_an_import_error(stack: AirflowApi) -> None:
    expected = {spec.dag_id for spec in dag_specs(load_settings(TEST_ENV))}
    assert expected
    for dag_id in sorted(expected):
        stack.wait_for_dag(dag_id)
    assert stack.import_errors() == {}
    assert stack.dag_ids() == expected


def test_the_airflow_ui_answers(stack: AirflowApi) -> None:
    with urllib.request.urlopen(stack.base_url + "/", timeout=30) as response:
        page = response.read().decode()
    assert response.status == 200
    assert "<title>Airflow" in page


def test_local_dag_triggered_through_the_rest_api_builds_the_marts(stack: AirflowApi,
                                                                   warehouse: ConnectionSettings) -> None:  # fmt: skip
    dag_id = "jaffle_shop_local"
    warehouse.query("drop schema if exists jaffle_shop cascade")
    stack.wait_for_dag(dag_id)
    run = stack.wait(dag_id, stack.trigger(dag_id))
    failed = {task: stack.task_log(dag_id, run.run_id, task)[-3000:] for task, state in run.tasks.items()
              if state != "success"}  # fmt: skip
    assert not failed, failed
    assert run.state == "success"
    assert len(run.tasks) > 5
    assert actual_marts(warehouse, "jaffle_shop") == expected_marts(scale=1)


def test_prod_aci_dag_runs_in_the_scheduler_container_against_the_emulator(
    stack: AirflowApi, warehouse: ConnectionSettings, dbt_image: str, docker_compose_project_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    warehouse.query("drop schema if exists jaffle_shop cascade")
    container = scheduler_container(docker_compose_project_name)
    with AciEmulator(startup_delay=0, state_dir=tmp_path / "aci") as aci:
        # The emulator's CA, where the container can read it; everything else is environment.
        subprocess.run(["docker", "cp", str(aci.tls.ca_certificate), f"{container}:/tmp/aci-ca.pem"], check=True)
        env = {**aci.client_env(), **aci.connection_env("azure_container_instances"), **registry_env(dbt_image),
               "REQUESTS_CA_BUNDLE": "/tmp/aci-ca.pem", "SSL_CERT_FILE": "/tmp/aci-ca.pem", "BLUEPRINT_ENV": "prod",
               "BLUEPRINT__AZURE_CONTAINER_INSTANCE__CI_CONN_ID": "azure_container_instances"}  # fmt: skip
        passed = [arg for name in env for arg in ("-e", name)]  # values travel in the client's environment
        result = subprocess.run(
            ["docker", "exec", *passed, container, "airflow", "dags", "test", ACI_DAG],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert actual_marts(warehouse, "jaffle_shop") == expected_marts(scale=1)
        groups = received_groups(aci, 0)
        assert groups, output[-3000:]
        assert aci.groups() == [], "container groups left behind"
        assert_password_only_as_secure_value(groups, warehouse.password)
        assert warehouse.password not in output
