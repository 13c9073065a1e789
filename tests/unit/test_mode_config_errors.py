"""The catalogue of bad configurations: each fails at parse time with an error naming the problem
and the fix, never deep inside Cosmos or a provider."""

from __future__ import annotations

import json

import pytest

from include.blueprint.container_env import InjectSecrets
from include.blueprint.modes import build_dbt_dag, build_single_task_dag
from include.blueprint.settings import BlueprintConfigError, load_settings


def _error(environ: dict[str, str]) -> str:
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(environ)
    return str(caught.value)


def test_a_container_mode_without_an_image() -> None:
    message = _error({"BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, docker]"})
    assert (
        "runtime.image: required because mode docker is enabled [enabled in BLUEPRINT__EXECUTION__ENABLED_MODES]"
        in message
    )


def test_every_missing_setting_of_every_enabled_mode_at_once() -> None:
    message = _error({"BLUEPRINT__EXECUTION__ENABLED_MODES": "[azure_container_instance, gcp_cloud_run_job]"})
    assert message.startswith("invalid blueprint configuration (6 problem(s))")
    for key in ("runtime.image", "azure_container_instance.resource_group", "azure_container_instance.region",
                "gcp_cloud_run_job.project_id", "gcp_cloud_run_job.region", "gcp_cloud_run_job.job_name"):  # fmt: skip
        assert f"  - {key}: required because mode" in message


def test_an_unknown_mode_lists_the_supported_ones() -> None:
    message = _error({"BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, fargate]"})
    assert "execution.enabled_modes.1: Input should be 'local', 'virtualenv', 'watcher'" in message
    assert "(got 'fargate')" in message


def test_wrong_types_are_named() -> None:
    message = _error({"BLUEPRINT__RUNTIME__CPU": "lots", "BLUEPRINT__AWS_ECS__SUBNETS": "subnet-1"})
    assert "runtime.cpu: Input should be a valid number" in message
    assert "aws_ecs.subnets: Input should be a valid list" in message


def test_the_password_cannot_be_configured_as_a_plain_variable() -> None:
    message = _error({"BLUEPRINT__RUNTIME__ENVIRONMENT": '{"POSTGRES_PASSWORD": "hunter2", "lower": "x"}'})
    assert "not valid environment variable names: lower" in message
    assert "hunter2" not in message  # a rejected value may be a credential: never echoed
    message = _error({"BLUEPRINT__RUNTIME__ENVIRONMENT": '{"POSTGRES_PASSWORD": "x"}'})
    assert "POSTGRES_PASSWORD is a secret: it is delivered by each runtime's secret mechanism" in message


def test_an_unknown_environment_names_the_known_ones() -> None:
    message = _error({"BLUEPRINT_ENV": "staging"})
    assert "BLUEPRINT_ENV='staging' has no file" in message
    assert "known environments: all-modes, dev, prod" in message


def test_every_shipped_environment_is_valid() -> None:
    for environment in ("dev", "prod", "all-modes"):
        assert load_settings({"BLUEPRINT_ENV": environment}).execution.enabled_modes


def test_an_unknown_mode_in_a_dag_file() -> None:
    with pytest.raises(BlueprintConfigError, match=r"unknown execution mode 'fargate'; supported: local, virtualenv"):
        build_dbt_dag("jaffle_shop_fargate", mode="fargate", config=load_settings({}))


def test_airflow_async_is_refused_for_postgres_with_what_is_supported() -> None:
    config = load_settings({"BLUEPRINT__EXECUTION__ENABLED_MODES": "[airflow_async]"})
    with pytest.raises(BlueprintConfigError, match=r"supports only bigquery warehouses .* targets postgres"):
        build_dbt_dag("jaffle_shop_airflow_async", mode="airflow_async", config=config)


def test_a_mode_without_a_single_task_variant() -> None:
    with pytest.raises(BlueprintConfigError, match=r"mode 'watcher' has no single-task variant; modes with one: "):
        build_single_task_dag("jaffle_shop_watcher_single_task", mode="watcher", config=load_settings({}))


def test_a_disabled_mode_defines_no_dag() -> None:
    assert build_dbt_dag("jaffle_shop_docker", mode="docker", config=load_settings({})) is None


def test_a_connection_without_the_secret_fails_the_task_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NO_PASSWORD", json.dumps({"conn_type": "postgres", "host": "db"}))
    task = type("Task", (), {"environment_variables": {}})()
    with pytest.raises(ValueError, match=r"connection 'no_password' has no value for POSTGRES_PASSWORD"):
        InjectSecrets("no_password", "environment_variables")({"task": task})


def test_the_secret_is_injected_into_the_named_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "postgres", "host": "db", "password": "p4ss"}
    monkeypatch.setenv("AIRFLOW_CONN_WITH_PASSWORD", json.dumps(conn))
    task = type("Task", (), {"environment_variables": {"POSTGRES_HOST": "db"}})()
    InjectSecrets("with_password", "environment_variables")({"task": task})
    assert task.environment_variables == {"POSTGRES_HOST": "db", "POSTGRES_PASSWORD": "p4ss"}
