"""The `lineage` settings: refused in one line when wrong, the Airflow `[openlineage]` config they
stand for, and a DAG import that fails in one line when the settings enable lineage but this
process's Airflow config does not. tests/integration/test_lineage.py emits events for real."""

from __future__ import annotations

import json

import pytest

from include.blueprint.lineage import airflow_config, environment_problems
from include.blueprint.lineage_settings import LineageSettings
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import BlueprintConfigError, load_settings

ON = {"BLUEPRINT__LINEAGE__ENABLED": "true"}
CATALOGUE = {
    "neither url nor conn_id": ({}, "lineage.url: set either url (an HTTP receiver) or conn_id"),
    "both": ({"URL": "http://marquez:5000", "CONN_ID": "ol"}, "lineage.url: set either url"),
    "not http": ({"URL": "kafka://broker:9092"}, "lineage.url: not an http(s) URL"),
    "a key in the URL": ({"URL": "https://ol.example.com/?api_key=s3cret"}, "lineage.url: holds credentials"),
    "a password in the URL": ({"URL": "https://user:s3cret@ol.example.com"}, "lineage.url: holds credentials"),
    "an API key with conn_id": ({"CONN_ID": "ol", "API_KEY_CONN_ID": "key"}, "lineage.api_key_conn_id: only with url"),
}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_each_bad_lineage_setting_is_refused_in_one_line(case: str) -> None:
    values, fragment = CATALOGUE[case]
    environ = {**ON, **{f"BLUEPRINT__LINEAGE__{key}": value for key, value in values.items()}}
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(environ)
    [line] = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert line.startswith(f"  - {fragment}"), line
    assert "s3cret" not in str(caught.value)


def test_off_by_default_and_then_the_provider_is_turned_off() -> None:
    settings = load_settings({})
    assert settings.lineage.enabled is False
    assert airflow_config(settings.lineage) == {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    assert environment_problems(settings.lineage) == []


def test_an_http_receiver_becomes_the_providers_http_transport() -> None:
    lineage = LineageSettings(enabled=True, url="http://marquez:5000", api_key_conn_id="marquez_api", namespace="prod")
    config = airflow_config(lineage)
    assert json.loads(config.pop("AIRFLOW__OPENLINEAGE__TRANSPORT")) == {
        "type": "http",
        "url": "http://marquez:5000",
        "endpoint": "api/v1/lineage",
        "timeout": 5.0,
        "auth": {"type": "airflow_connection_api_key", "conn_id": "marquez_api"},
    }
    assert config == {"AIRFLOW__OPENLINEAGE__DISABLED": "False", "AIRFLOW__OPENLINEAGE__NAMESPACE": "prod"}


def test_a_connection_becomes_the_providers_config_connection() -> None:
    assert airflow_config(LineageSettings(enabled=True, conn_id="openlineage_default")) == {
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "default",
        "AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID": "openlineage_default",
    }


def test_enabled_lineage_without_airflows_config_fails_the_dag_import_in_one_line(
    jaffle_project: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {**ON, "BLUEPRINT__LINEAGE__URL": "http://marquez:5000"}
    settings = load_settings(environ)
    monkeypatch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT", raising=False)
    with pytest.raises(BlueprintConfigError) as caught:
        declared_dags("local", settings)
    [line] = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert line.startswith("  - lineage.enabled is true but Airflow's AIRFLOW__OPENLINEAGE__NAMESPACE, "), line
    assert "`python -m include.blueprint.lineage` prints" in line

    for name, value in airflow_config(settings.lineage).items():
        monkeypatch.setenv(name, value)
    assert "jaffle_shop_local" in declared_dags("local", settings)
