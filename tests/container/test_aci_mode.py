"""The Azure Container Instances DAGs, for real as far as a machine without Azure allows: the Azure
provider's operator and hook, azure-identity and the Azure SDK run unchanged against the local ACI
emulator (tools/aci_emulator), which runs each container group in the dbt runtime image on the
local Docker engine against the real PostgreSQL. Only the endpoint (a proxy and a throwaway CA)
and the credential (the emulator's managed identity) differ from production, and both live here,
in environment variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.blueprint import ownership
from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT, actual_marts, expected_marts
from tests.integration.test_local_dags import run_dag_process
from tools.aci_emulator import SUBSCRIPTION, AciEmulator
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.container]

RESOURCE_GROUP = "rg-blueprint-e2e"
REGISTRY = "blueprintacr"
ACI_DAG = "jaffle_shop_azure_container_instance"
ACI_SINGLE_TASK_DAG = "jaffle_shop_azure_container_instance_single_task"


@pytest.fixture(scope="module")
def aci(dbt_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AciEmulator]:
    with AciEmulator(startup_delay=0, state_dir=tmp_path_factory.mktemp("aci")) as emulator:
        yield emulator
        # Every test deletes what it created: nothing may be left when the module is done.
        assert emulator.groups() == [], "container groups left behind in the emulator"


def aci_overrides(image: str, conn_id: str = "azure_container_instances") -> dict[str, str]:
    return {
        "BLUEPRINT__EXECUTION__ENABLED_MODES": "[azure_container_instance]",
        "BLUEPRINT__RUNTIME__IMAGE": image,
        "BLUEPRINT__AZURE_CONTAINER_INSTANCE__CI_CONN_ID": conn_id,
        "BLUEPRINT__AZURE_CONTAINER_INSTANCE__RESOURCE_GROUP": RESOURCE_GROUP,
        "BLUEPRINT__AZURE_CONTAINER_INSTANCE__REGION": "westeurope",
    }


def aci_env(
    aci: AciEmulator, image: str, home: Path, postgres: ConnectionSettings, schema: str, **extra: str
) -> dict[str, str]:
    overrides = {**aci_overrides(image), "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": schema, **extra}
    env = airflow_env(home, load_settings(overrides), postgres)
    env.update(overrides)
    # The test-only difference from production: where Azure is, and which identity signs in.
    env.update(aci.client_env())
    env.update(aci.connection_env("azure_container_instances"))
    migrate_metadata_db(env)
    return env


def received_groups(aci: AciEmulator, since: int) -> list[dict]:
    return [event for event in aci.history()[since:] if event["event"] == "put"]


def deleted_names(aci: AciEmulator, since: int) -> set[str]:
    return {event["name"] for event in aci.history()[since:] if event["event"] == "delete"}


def assert_password_only_as_secure_value(groups: list[dict], password: str) -> None:
    assert groups
    for group in groups:
        (container,) = group["received"]["properties"]["containers"]
        variables = {v["name"]: v for v in container["properties"]["environmentVariables"]}
        assert variables["POSTGRES_PASSWORD"] == {"name": "POSTGRES_PASSWORD", "secureValue": password}
        others = [v for name, v in variables.items() if name != "POSTGRES_PASSWORD"]
        assert password not in json.dumps(others)
        assert password not in json.dumps(container["properties"]["command"])


def rendered_fields(home: Path) -> str:
    """Every rendered template field Airflow stored for the run (the UI's "Rendered Template")."""
    script = textwrap.dedent("""
        import json
        from airflow.models.renderedtifields import RenderedTaskInstanceFields
        from airflow.utils.session import create_session
        with create_session() as session:
            rows = session.query(RenderedTaskInstanceFields).all()
            print(json.dumps([{"task_id": row.task_id, "fields": row.rendered_fields} for row in rows], default=str))
    """)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def registry_env(image: str) -> dict[str, str]:
    """The image from an (emulated) Azure Container Registry, reached through a passwordless registry
    connection: the provider lists the registry's credentials with the managed identity."""
    connection = {"conn_type": "azure_container_registry", "login": REGISTRY, "host": f"{REGISTRY}.azurecr.io",
                  "extra": {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP}}  # fmt: skip
    return {
        "BLUEPRINT__RUNTIME__IMAGE": f"{REGISTRY}.azurecr.io/{image}",
        "BLUEPRINT__RUNTIME__REGISTRY_CONN_ID": "acr",
        "AIRFLOW_CONN_ACR": json.dumps(connection),
    }


@pytest.mark.parametrize(
    ("dag_id", "expected_tasks", "from_registry"),
    [
        (ACI_DAG, dict.fromkeys(["dbt_build_seeds", "dbt_build_staging", "dbt_build_marts"], "success"), False),
        (ACI_SINGLE_TASK_DAG, {"dbt_build": "success"}, True),
    ],
)
def test_aci_dag_builds_the_same_marts_and_leaves_nothing(
    jaffle_project: Path, aci: AciEmulator, dbt_image: str, postgres: ConnectionSettings, tmp_path: Path,
    dag_id: str, expected_tasks: dict[str, str], from_registry: bool,
) -> None:  # fmt: skip
    schema = f"e2e_{'aci_single' if dag_id == ACI_SINGLE_TASK_DAG else 'aci'}"
    home = tmp_path / "airflow"
    since = len(aci.history())
    extra = registry_env(dbt_image) if from_registry else {}
    summary, logs = run_dag_process(dag_id, aci_env(aci, dbt_image, home, postgres, schema, **extra))
    assert summary["tasks"] == expected_tasks, (summary, logs[-3000:])
    assert actual_marts(postgres, schema) == expected_marts(scale=1)

    groups = received_groups(aci, since)
    assert len(groups) == len(expected_tasks)
    assert {group["name"] for group in groups} == deleted_names(aci, since)
    assert aci.groups() == []
    # Passwordless: every management call carried a token from the managed identity endpoint.
    assert {request["flow"] for request in aci.requests()} == {"managed_identity"}

    assert_password_only_as_secure_value(groups, postgres.password)
    # Each group names its task instance, so the sweeper could tell whether it is left over.
    assert {ownership.task_instance_of(group["received"]["tags"]).task_id for group in groups} == set(expected_tasks)
    if from_registry:
        (credential,) = groups[0]["received"]["properties"]["imageRegistryCredentials"]
        assert (credential["server"], credential["username"]) == (f"{REGISTRY}.azurecr.io", REGISTRY)
    assert "Container had exit code: 0" in logs
    assert postgres.password not in logs
    rendered = rendered_fields(home)
    assert "POSTGRES_HOST" in rendered
    assert "azure_container_instances" in rendered
    assert postgres.password not in rendered


# -- cleanup after failure, timeout and kill --------------------------------------------------------
# One dbt node of the Cosmos ACI DAG (stg_orders' `dbt run`), built by the factory at node
# granularity, run with `dag.test()` in a child process; a case may add an execution_timeout.
NODE_SCRIPT = """
import json, os, sys
from datetime import timedelta
import airflow
os.environ["BLUEPRINT__EXECUTION__GRANULARITY"] = "node"
from include.blueprint.modes import build_dbt_dag
dag = build_dbt_dag("jaffle_shop_azure_container_instance", mode="azure_container_instance")
dag = dag.partial_subset(task_ids=["stg_orders.run"], include_upstream=False)
timeout = float(sys.argv[1])
if timeout:
    for task in dag.tasks:
        task.execution_timeout = timedelta(seconds=timeout)
run = dag.test()
print(json.dumps({ti.task_id: str(ti.state) for ti in run.get_task_instances()}))
"""


def node_process(env: dict[str, str], timeout: float = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT, str(timeout)], env=env, cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[dict[str, str], str]:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        stop(process)
    return json.loads(output.strip().splitlines()[-1]), output


def stop(process: subprocess.Popen[str]) -> None:
    """Kill the task process if it is still there (a failed wait): it must not outlive its test."""
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=30)


@pytest.fixture
def blocked_orders(postgres: ConnectionSettings) -> Iterator[str]:
    """A schema whose raw_orders is locked by an open transaction: stg_orders' container blocks on
    it for as long as the test wants, so the timeout and the kill hit a group that is Running."""
    schema = "e2e_aci_blocked"
    connection = postgres.connect()
    with connection.cursor() as cursor:
        cursor.execute(f"drop schema if exists {schema} cascade; create schema {schema}")
        cursor.execute(f"create table {schema}.raw_orders (id int, user_id int, order_date date, status text)")
        cursor.execute(f"lock table {schema}.raw_orders in access exclusive mode")
        try:
            yield schema
        finally:
            connection.rollback()
            connection.close()


def wait_until_running(aci: AciEmulator, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [group for group in aci.groups() if group["state"] == "Running"]
        if running:
            return running[0]
        time.sleep(0.5)
    pytest.fail(f"no container group reached Running within {timeout} s: {aci.groups()}")


def docker_container_exists(name: str) -> bool:
    result = subprocess.run(["docker", "container", "inspect", name], capture_output=True, text=True)
    return result.returncode == 0


def test_a_failing_model_deletes_its_group(
    jaffle_project: Path, aci: AciEmulator, dbt_image: str, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    # A schema without the seeds: stg_orders fails in its container with a database error.
    env = aci_env(aci, dbt_image, tmp_path / "airflow", postgres, "e2e_aci_missing", BLUEPRINT__DAGS__RETRIES="0")
    since = len(aci.history())
    tasks, output = finish(node_process(env))
    assert tasks == {"stg_orders.run": "failed"}, output[-3000:]
    assert "Container had a non-zero exit code, 1" in output, output[-3000:]
    # The container's whole log reached Airflow, each line once, before the group was deleted.
    assert output.count('relation "e2e_aci_missing.raw_orders" does not exist') == 1, output[-5000:]
    assert output.count("Done. PASS=0 WARN=0 ERROR=1") == 1, output[-5000:]
    (group,) = received_groups(aci, since)
    assert deleted_names(aci, since) == {group["name"]}
    assert not any(docker_container_exists(name) for name in group["docker_names"])
    assert aci.groups() == []
    assert postgres.password not in output


def test_a_task_timeout_deletes_its_running_group(
    jaffle_project: Path, aci: AciEmulator, dbt_image: str, postgres: ConnectionSettings, tmp_path: Path,
    blocked_orders: str,
) -> None:  # fmt: skip
    env = aci_env(aci, dbt_image, tmp_path / "airflow", postgres, blocked_orders, BLUEPRINT__DAGS__RETRIES="0")
    since = len(aci.history())
    process = node_process(env, timeout=20)
    try:
        group = wait_until_running(aci)
    except BaseException:
        stop(process)
        raise
    tasks, output = finish(process)
    assert tasks == {"stg_orders.run": "failed"}, output[-3000:]
    assert "AirflowTaskTimeout" in output
    assert deleted_names(aci, since) == {group["name"]}
    assert not any(docker_container_exists(name) for name in group["docker_names"])
    assert aci.groups() == []


def test_a_killed_task_deletes_its_running_group(
    jaffle_project: Path, aci: AciEmulator, dbt_image: str, postgres: ConnectionSettings, tmp_path: Path,
    blocked_orders: str,
) -> None:  # fmt: skip
    """Killing a task is what Airflow's supervisor does when it is marked failed in the UI or its
    worker shuts down: SIGTERM, whose handler calls the operator's on_kill (which deletes the group),
    then SIGKILL 5 s later if the process is still there. This test plays the supervisor."""
    env = aci_env(aci, dbt_image, tmp_path / "airflow", postgres, blocked_orders, BLUEPRINT__DAGS__RETRIES="0")
    since = len(aci.history())
    process = node_process(env)
    try:
        group = wait_until_running(aci)
        time.sleep(2)  # a few polls of the running group, as in a real run
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=5)  # the supervisor's escalation delay
        except subprocess.TimeoutExpired:
            # The provider's monitor loop only stops on msrestazure's CloudError, never raised by the
            # track-2 SDK, so after on_kill it polls a deleted group until the SIGKILL.
            process.kill()
            output, _ = process.communicate(timeout=30)
    finally:
        stop(process)
    assert "Deleting container group" in output
    assert deleted_names(aci, since) == {group["name"]}
    assert not any(docker_container_exists(name) for name in group["docker_names"])
    assert aci.groups() == []
