"""The conformance matrix: every execution mode renders jaffle_shop into the same dbt nodes with the
same dependencies, and each container operator, after Airflow's own template rendering against a
real (environment-variable) connection, holds exactly what its provider would send.

Cloud APIs cannot be reached here, so this stops at the deepest layer that runs without them:
the rendered operator and the command and environment Cosmos builds for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.execution_time.context import ConnectionAccessor

from include.blueprint import ownership
from include.blueprint.names import NAME_RULE
from include.blueprint.sweeper import DAG_ID as SWEEPER_DAG_ID
from tests.conftest import REPO_ROOT
from tests.dags.expectations import problems_of
from tests.dags.test_dag_integrity import JAFFLE_SHOP_TASKS, JAFFLE_SHOP_WATCHER_TASKS

PASSWORD = "pw-Zq81-not-for-logs"
CONNECTION = {"conn_type": "postgres", "host": "db.internal", "port": 6432, "login": "dbt_runner",
              "password": PASSWORD, "schema": "analytics"}  # fmt: skip
RUN_ID = "scheduled__2026-11-23T00:00:00+00:00"
PER_NODE_MODES = ["local", "virtualenv", "docker", "kubernetes", "azure_container_instance", "aws_ecs", "aws_eks",
                  "gcp_cloud_run_job"]  # fmt: skip
CONTAINER_MODES = PER_NODE_MODES[2:]
PLAIN_ENV = {"POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6432", "POSTGRES_USER": "dbt_runner",
             "POSTGRES_DATABASE": "analytics", "POSTGRES_SCHEMA": "jaffle_shop"}  # fmt: skip
# The trigger form's dbt variables (none by default) travel on every command.
STG_CUSTOMERS_RUN = ["dbt", "run", "--select", "fqn:jaffle_shop.staging.stg_customers", "--vars", "{}"]


@pytest.fixture(scope="module")
def all_modes(jaffle_project: Path) -> Iterator[DagBag]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BLUEPRINT_ENV", "all-modes")
        patch.setenv("AIRFLOW_CONN_JAFFLE_SHOP_POSTGRES", json.dumps(CONNECTION))
        # The matrix compares per-node rendering; tests/dags/test_granularity.py covers the others.
        patch.setenv("BLUEPRINT__EXECUTION__GRANULARITY", "node")
        from include.blueprint.settings import settings

        settings.cache_clear()
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
        yield bag
        settings.cache_clear()


def _render(bag: DagBag, dag_id: str, task_id: str, try_number: int = 1) -> tuple[Any, str]:
    """Render like Airflow's task runner does; return the task and its rendered fields as text."""
    dag = bag.dags[dag_id]
    task = dag.task_dict[task_id].prepare_for_execution()  # a copy, as the task runner makes
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, map_index=-1, try_number=try_number)
    context = {"ti": ti, "task_instance": ti, "run_id": RUN_ID, "conn": ConnectionAccessor(), "dag": dag,
               "task": task, "params": {key: dag.params[key] for key in dag.params}, "var": {}}  # fmt: skip
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    rendered = repr({field: getattr(task, field, None) for field in task.template_fields})
    if task._pre_execute_hook is not None:
        task._pre_execute_hook(context)
    if hasattr(task, "build_kube_args"):
        task.build_kube_args(context)
    elif hasattr(task, "build_command"):
        task.build_command(context)
    return task, rendered


def test_every_mode_file_defines_the_dags_of_its_mode(all_modes: DagBag) -> None:
    from include.blueprint.dag_specs import dag_specs
    from include.blueprint.settings import load_settings

    specs = dag_specs(
        load_settings({**os.environ, "BLUEPRINT_ENV": "all-modes", "BLUEPRINT__EXECUTION__GRANULARITY": "node"})
    )
    expected = {spec.dag_id: spec for spec in specs}
    assert all_modes.import_errors == {}
    # docker and azure_container_instance are enabled, so the sweeper is there too.
    assert set(all_modes.dag_ids) == {*expected, SWEEPER_DAG_ID}
    assert Path(all_modes.dags[SWEEPER_DAG_ID].fileloc).stem == SWEEPER_DAG_ID
    dbt_dags = [dag for dag in all_modes.dags.values() if dag.dag_id != SWEEPER_DAG_ID]
    assert all(Path(dag.fileloc).stem == f"dbt_{expected[dag.dag_id].mode}" for dag in dbt_dags)


def test_every_dag_follows_its_declaration_the_manifest_and_the_policy(all_modes: DagBag) -> None:
    from include.blueprint.dag_specs import dag_specs
    from include.blueprint.settings import load_settings

    specs = dag_specs(
        load_settings({**os.environ, "BLUEPRINT_ENV": "all-modes", "BLUEPRINT__EXECUTION__GRANULARITY": "node"})
    )
    problems = {spec.dag_id: problems_of(all_modes.dags[spec.dag_id], spec) for spec in specs}
    assert {dag_id: found for dag_id, found in problems.items() if found} == {}


@pytest.mark.parametrize("mode", PER_NODE_MODES)
def test_every_mode_renders_the_same_nodes_and_dependencies(all_modes: DagBag, mode: str) -> None:
    dag = all_modes.dags[f"jaffle_shop_{mode}"]
    assert {task_id: set(task.upstream_task_ids) for task_id, task in dag.task_dict.items()} == JAFFLE_SHOP_TASKS


def test_watcher_adds_only_its_producer_in_front(all_modes: DagBag) -> None:
    dag = all_modes.dags["jaffle_shop_watcher"]
    expected = {
        task_id: upstream or {"dbt_producer_watcher"} for task_id, upstream in JAFFLE_SHOP_WATCHER_TASKS.items()
    }
    expected["dbt_producer_watcher"] = set()
    assert {task_id: set(task.upstream_task_ids) for task_id, task in dag.task_dict.items()} == expected


@pytest.mark.parametrize("mode", ["local", *CONTAINER_MODES])
def test_every_single_task_baseline_is_one_dbt_build(all_modes: DagBag, mode: str) -> None:
    dag = all_modes.dags[f"jaffle_shop_{mode}_single_task"]
    assert list(dag.task_dict) == ["dbt_build"]
    assert dag.task_dict["dbt_build"].base_cmd == ["build"]


@pytest.mark.parametrize("mode", CONTAINER_MODES)
def test_the_password_is_in_no_rendered_field_and_no_plain_environment(all_modes: DagBag, mode: str) -> None:
    task, rendered = _render(all_modes, f"jaffle_shop_{mode}", "stg_customers.run")
    assert PASSWORD not in rendered
    for plain in ("environment", "env_vars", "overrides"):
        assert PASSWORD not in repr(getattr(task, plain, None))


def _env_list(pairs: list[Any]) -> dict[str, str]:
    return {(p["name"] if isinstance(p, dict) else p.name): (p["value"] if isinstance(p, dict) else p.value)
            for p in pairs if not (isinstance(p, dict) and "value" not in p)}  # fmt: skip


def _without_airflow_context(environment: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in environment.items() if not key.startswith("AIRFLOW_CTX_")}


def test_docker_sends_the_password_only_as_private_environment(all_modes: DagBag) -> None:
    task, _ = _render(all_modes, "jaffle_shop_docker", "stg_customers.run")
    assert task.image == "registry.example.com/dbt-runtime:1.0.0"
    assert task.command == STG_CUSTOMERS_RUN
    assert _without_airflow_context(task.environment) == PLAIN_ENV
    assert task._private_environment == {"POSTGRES_PASSWORD": PASSWORD}
    assert task.working_dir == "/usr/app/dbt"
    assert NAME_RULE.match(task.container_name)


def test_aci_sends_the_password_as_a_secured_variable(all_modes: DagBag) -> None:
    task, _ = _render(all_modes, "jaffle_shop_azure_container_instance", "stg_customers.run")
    assert (task.ci_conn_id, task.registry_conn_id) == ("azure_container_instances", "dbt_runtime_registry")
    assert (task.resource_group, task.region, task.image) == (
        "rg-data-platform", "westeurope", "registry.example.com/dbt-runtime:1.0.0",
    )  # fmt: skip
    assert task.command == STG_CUSTOMERS_RUN
    assert _without_airflow_context(task.environment_variables) == {**PLAIN_ENV, "POSTGRES_PASSWORD": PASSWORD}
    assert task.secured_variables == ["POSTGRES_PASSWORD"]
    assert "_log_last" in vars(task)  # the log follower (tests/unit/test_aci_logs.py) replaced the provider's
    assert (task.cpu, task.memory_in_gb, task.remove_on_error, task.deferrable) == (1.0, 2.0, True, False)
    assert NAME_RULE.match(task.name)
    assert len(task.name) <= 63


@pytest.mark.parametrize(("mode", "attribute", "name"), [("docker", "labels", "container_name"),
                                                       ("azure_container_instance", "tags", "name")])  # fmt: skip
def test_containers_carry_their_task_instance_for_the_sweeper(
    all_modes: DagBag, mode: str, attribute: str, name: str
) -> None:
    task, _ = _render(all_modes, f"jaffle_shop_{mode}", "stg_customers.run", try_number=2)
    labels = getattr(task, attribute)
    key = ownership.TaskInstanceKey(f"jaffle_shop_{mode}", RUN_ID, "stg_customers.run", -1)
    assert ownership.task_instance_of(labels) == key
    assert (labels[ownership.OWNER], labels[ownership.TRY_NUMBER]) == ("default", "2")
    assert ownership.created_at(labels) is not None
    assert getattr(task, name).startswith("dbt-")  # the sweeper's other condition


@pytest.mark.parametrize("mode", ["kubernetes", "aws_eks"])
def test_pods_take_the_password_from_a_kubernetes_secret(all_modes: DagBag, mode: str) -> None:
    task, _ = _render(all_modes, f"jaffle_shop_{mode}", "stg_customers.run")
    assert task.image == "registry.example.com/dbt-runtime:1.0.0"
    assert task.namespace == "dbt"
    assert task.arguments == [*STG_CUSTOMERS_RUN, "--project-dir", "/usr/app/dbt"]
    assert _without_airflow_context(_env_list(task.env_vars)) == PLAIN_ENV
    assert [(s.deploy_type, s.deploy_target, s.secret, s.key) for s in task.secrets] == [
        ("env", "POSTGRES_PASSWORD", "dbt-postgres", "password")
    ]
    assert task.container_resources.requests == {"cpu": "1.0", "memory": "2048Mi"}
    assert [secret.name for secret in task.image_pull_secrets] == ["dbt-runtime-registry"]
    assert NAME_RULE.match(task.name)


def test_eks_targets_its_cluster(all_modes: DagBag) -> None:
    task, _ = _render(all_modes, "jaffle_shop_aws_eks", "stg_customers.run")
    assert (task.cluster_name, task.region, task.aws_conn_id) == ("data-platform", "eu-west-1", "aws_default")
    assert task.pod_name == task.name


def test_ecs_overrides_only_command_and_plain_environment(all_modes: DagBag) -> None:
    task, _ = _render(all_modes, "jaffle_shop_aws_ecs", "stg_customers.run")
    assert (task.cluster, task.task_definition, task.launch_type) == ("data-platform", "dbt-runtime", "FARGATE")
    assert task.network_configuration == {"awsvpcConfiguration": {
        "subnets": ["subnet-0a1b2c3d4e5f60718"], "securityGroups": ["sg-0a1b2c3d4e5f60718"],
        "assignPublicIp": "DISABLED"}}  # fmt: skip
    [container] = task.overrides["containerOverrides"]
    assert container["name"] == "dbt"
    assert container["command"] == STG_CUSTOMERS_RUN
    assert _without_airflow_context(_env_list(container["environment"])) == PLAIN_ENV


def test_cloud_run_overrides_only_args_and_plain_environment(all_modes: DagBag) -> None:
    task, _ = _render(all_modes, "jaffle_shop_gcp_cloud_run_job", "stg_customers.run")
    assert (task.project_id, task.region, task.job_name) == ("data-platform-1234", "europe-west1", "dbt-runtime")
    [container] = task.overrides["container_overrides"]
    assert container["args"] == [*STG_CUSTOMERS_RUN, "--project-dir", "/usr/app/dbt"]
    assert _without_airflow_context(_env_list(container["env"])) == PLAIN_ENV


@pytest.mark.parametrize("mode", ["docker", "kubernetes", "azure_container_instance"])
def test_names_differ_per_task_and_per_try(all_modes: DagBag, mode: str) -> None:
    field = {"docker": "container_name"}.get(mode, "name")
    names = {
        getattr(_render(all_modes, f"jaffle_shop_{mode}", task_id, try_number)[0], field)
        for task_id in JAFFLE_SHOP_TASKS
        for try_number in (1, 2)
    }
    assert len(names) == 2 * len(JAFFLE_SHOP_TASKS)
    assert all(NAME_RULE.match(name) and len(name) <= 63 for name in names)
