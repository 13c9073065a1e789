"""The sweeper DAG for real: its tasks run under `dag.test()` against a real Airflow metadata
database (a temporary AIRFLOW_HOME), read task instance states through the Task SDK, and delete
through the Azure provider's hook (against the ACI emulator) and the Docker provider's hook (the
local engine). Only leftovers whose task instance is over, older than the grace period and
labelled by this deployment may go."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.blueprint import ownership
from tests.conftest import REPO_ROOT
from tools.aci_emulator import AciEmulator
from tools.airflow_db import migrate_metadata_db
from tools.local_env import AIRFLOW_BIN

pytestmark = [pytest.mark.integration, pytest.mark.container]

RESOURCE_GROUP = "rg-sweeper"
# A deployment name of its own: other sessions' containers on this shared engine are never ours.
DEPLOYMENT = f"sweeper-test-{uuid.uuid4().hex[:8]}"
PREFIX = "dbt"

# Child process, step "probe": a DAG run whose task instances the leftovers name (one finished,
# one set back to running), then ACI groups created through the provider's hook, as the mode does.
# Step "sweep": the sweeper DAG under dag.test(), first with a 10-minute grace period, then none.
# dag.test() runs only DAGs its dags folder defines: the probe DAG, and the sweeper's own file.
PROBE_DAG = """
import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("sweeper_probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as probe:
    EmptyOperator(task_id="finished")
    EmptyOperator(task_id="running")
"""
SCRIPT = """
import datetime as dt, json, os, sys
import airflow
from airflow.sdk import DAG

step, plan = sys.argv[1], json.loads(sys.argv[2])
if step == "probe":
    from types import SimpleNamespace
    from airflow.models import TaskInstance
    from airflow.providers.microsoft.azure.hooks.container_instance import AzureContainerInstanceHook
    from airflow.utils.session import create_session
    from azure.mgmt.containerinstance.models import (
        Container, ContainerGroup, ResourceRequests, ResourceRequirements)
    from include.blueprint.ownership import labels_for

    import importlib.util
    path = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "probe.py")
    spec = importlib.util.spec_from_file_location("probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_id = module.probe.test().run_id
    with create_session() as session:
        session.query(TaskInstance).filter_by(dag_id="sweeper_probe", run_id=run_id, task_id="running").update(
            {"state": "running"})
    hook = AzureContainerInstanceHook(azure_conn_id="azure_container_instances")
    now = dt.datetime.now(dt.UTC)
    for name, group in plan["groups"].items():
        ti = SimpleNamespace(dag_id="sweeper_probe", task_id=group["task_id"], map_index=-1, try_number=1)
        created = now - dt.timedelta(minutes=group["age_minutes"])
        tags = labels_for(ti, group.get("run_id", run_id), group.get("deployment", plan["deployment"]), created)
        container = Container(name="dbt", image=plan["image"], command=["sleep", "300"],
                              resources=ResourceRequirements(requests=ResourceRequests(cpu=0.1, memory_in_gb=0.1)))
        hook.create_or_update(plan["resource_group"], name, ContainerGroup(
            location="westeurope", os_type="Linux", restart_policy="Never", containers=[container], tags=tags))
    result = {"run_id": run_id}
else:
    from include.blueprint.settings import load_settings
    from include.blueprint.sweeper import DAG_ID, sweeper_dags
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    sweeps = []
    for grace in ("10", "0"):
        dag = sweeper_dags(load_settings({**os.environ, "BLUEPRINT__SWEEPER__GRACE_MINUTES": grace}))[DAG_ID]
        run = dag.test()
        with create_session() as session:
            rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run.run_id, key="return_value")
            results = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        sweeps.append({ti.task_id: [str(ti.state), results.get(ti.task_id)] for ti in run.get_task_instances()})
    result = sweeps
# A file, not stdout: the Azure SDK's and Airflow's log lines share stdout and interleave with it.
with open(sys.argv[3], "w") as out:
    json.dump(result, out)
"""


@pytest.fixture(scope="module")
def aci(dbt_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AciEmulator]:
    with AciEmulator(startup_delay=0, state_dir=tmp_path_factory.mktemp("aci")) as emulator:
        yield emulator


def child(step: str, plan: dict, env: dict[str, str]) -> object:
    output = Path(env["AIRFLOW_HOME"]) / f"{step}.json"
    result = subprocess.run([sys.executable, "-c", SCRIPT, step, json.dumps(plan), str(output)], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)  # fmt: skip
    if os.environ.get("SWEEPER_TEST_ECHO"):
        print(result.stdout)
    assert result.returncode == 0, f"{step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(output.read_text())


def docker_run(name: str, image: str, labels: dict[str, str]) -> None:
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    command = ["docker", "run", "-d", "--name", name, "--network", "host", *label_args, "--entrypoint", "sleep",
               image, "300"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)


def docker_names(token: str) -> set[str]:
    listed = subprocess.run(["docker", "ps", "-a", "--filter", f"name={token}", "--format", "{{.Names}}"],
                            check=True, capture_output=True, text=True)  # fmt: skip
    return set(listed.stdout.split())


@pytest.fixture
def containers(dbt_image: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Names of the Docker containers this test starts, removed whatever happens."""
    token = uuid.uuid4().hex[:8]
    names = {case: f"{PREFIX}-sweeper-{case}-{token}" for case in ("finished", "running", "unlabelled")}
    yield token, names
    subprocess.run(["docker", "rm", "--force", *names.values()], capture_output=True)


def test_the_sweeper_deletes_only_leftovers_of_finished_task_instances(
    aci: AciEmulator, dbt_image: str, containers: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO_ROOT), "PATH": f"{AIRFLOW_BIN}{os.pathsep}{env.get('PATH', '')}",
        "BLUEPRINT__EXECUTION__ENABLED_MODES": "[docker, azure_container_instance]",
        "BLUEPRINT__RUNTIME__IMAGE": dbt_image, "BLUEPRINT__AZURE_CONTAINER_INSTANCE__REGION": "westeurope",
        "BLUEPRINT__AZURE_CONTAINER_INSTANCE__RESOURCE_GROUP": RESOURCE_GROUP,
        "BLUEPRINT__SWEEPER__DEPLOYMENT": DEPLOYMENT,
        **aci.client_env(), **aci.connection_env("azure_container_instances"),
    })  # fmt: skip
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG)
    shutil.copy(REPO_ROOT / "dags" / "blueprint_sweeper.py", dags)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    migrate_metadata_db(env)
    groups = {
        "dbt-finished-old": {"task_id": "finished", "age_minutes": 60},
        "dbt-finished-young": {"task_id": "finished", "age_minutes": 0},
        "dbt-running-old": {"task_id": "running", "age_minutes": 60},
        "dbt-deleted-run-old": {"task_id": "finished", "age_minutes": 60, "run_id": "manual__deleted"},
        "dbt-foreign-old": {"task_id": "finished", "age_minutes": 60, "deployment": "another-deployment"},
        "etl-finished-old": {"task_id": "finished", "age_minutes": 60},  # not our name prefix
    }
    plan = {"groups": groups, "deployment": DEPLOYMENT, "image": dbt_image, "resource_group": RESOURCE_GROUP}
    run_id = child("probe", plan, env)["run_id"]  # type: ignore[index]
    assert {group["name"] for group in aci.groups()} == set(groups)

    token, names = containers
    for case in ("finished", "running"):
        ti = type("TI", (), {"dag_id": "sweeper_probe", "task_id": case, "map_index": -1, "try_number": 1})
        docker_run(names[case], dbt_image, ownership.labels_for(ti, run_id, DEPLOYMENT))
    docker_run(names["unlabelled"], dbt_image, {})

    first, second = child("sweep", plan, env)  # type: ignore[misc]
    aci_task, docker_task = "sweep_azure_container_instance", "sweep_docker"
    assert (first[aci_task][0], first[docker_task][0], second[aci_task][0], second[docker_task][0]) == (
        "success", "success", "success", "success",
    ), (first, second)  # fmt: skip
    # Grace 10 min: only the old leftovers of finished or deleted task instances go.
    assert _sorted(first[aci_task][1]) == {
        "deleted": ["dbt-deleted-run-old", "dbt-finished-old"],
        "kept": ["dbt-finished-young", "dbt-running-old"],  # the others are not ours: never looked at
    }
    assert _sorted(first[docker_task][1]) == {"deleted": [], "kept": sorted([names["finished"], names["running"]])}
    # No grace: the young finished ones go too; a running task instance's never does.
    assert _sorted(second[aci_task][1]) == {"deleted": ["dbt-finished-young"], "kept": ["dbt-running-old"]}
    assert _sorted(second[docker_task][1]) == {"deleted": [names["finished"]], "kept": [names["running"]]}

    assert {group["name"] for group in aci.groups()} == {"dbt-running-old", "dbt-foreign-old", "etl-finished-old"}
    assert docker_names(token) == {names["running"], names["unlabelled"]}
    for group in aci.groups():  # what the sweeper rightly kept; the emulator holds it, not Azure
        aci.store.delete(group["id"].split("/")[2], RESOURCE_GROUP, group["name"])


def _sorted(result: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: sorted(names) for key, names in result.items()}
