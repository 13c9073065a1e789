"""OpenLineage for the dbt DAGs: the `lineage` settings turned into Airflow's `[openlineage]` config.

Who does what. Cosmos's local-like operators (local, virtualenv, the watcher's producer) read each
dbt command's manifest.json and run_results.json with openlineage-integration-common (a Cosmos
dependency) and hand the result to Airflow's OpenLineage provider, whose listener sends one START
and one COMPLETE (or FAIL) event per task, with the models, seeds and sources the task read and
wrote as input and output datasets (named after the warehouse: postgres://host:port,
database.schema.table). The provider reads its transport from Airflow's configuration, which every
Airflow process loads when it starts, before any DAG file: so the settings cannot switch it on from
the DAG code. `airflow_config()` is what the processes need (`make run`, `make ui` and the tests
set it; a deployment sets what `python -m include.blueprint.lineage` prints), and the DAG import
fails with one line when the settings enable lineage but the provider or that config is missing.

Without the provider, Cosmos logs a warning at every parse ("install
apache-airflow-providers-openlineage") and Airflow another for [openlineage] namespace: `quiet()`
drops those two lines, and only them, where the provider is not installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
from typing import Any

from include.blueprint.lineage_settings import PROVIDER, LineageSettings

_NOISE = {
    "cosmos.operators.local": "To enable emitting Openlineage events",
    # Airflow's core configuration parser and the Task SDK's copy of it.
    "airflow._shared.configuration.parser": "section/key [openlineage/",
    "airflow.sdk._shared.configuration.parser": "section/key [openlineage/",
}


def airflow_config(lineage: LineageSettings) -> dict[str, str]:
    """The AIRFLOW__OPENLINEAGE__* variables every Airflow process (scheduler, workers, DAG
    processor, triggerer, API server) needs for these settings."""
    if not lineage.enabled:
        # Explicit, so that a provider installed anyway (dev venvs, a shared image) stays silent.
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    config = {"AIRFLOW__OPENLINEAGE__DISABLED": "False", "AIRFLOW__OPENLINEAGE__NAMESPACE": lineage.namespace}
    if lineage.conn_id:
        return {**config, "AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID": lineage.conn_id}
    transport: dict[str, Any] = {
        "type": "http",
        "url": lineage.url,
        "endpoint": lineage.endpoint,
        "timeout": lineage.timeout_seconds,
    }
    if lineage.api_key_conn_id:
        # The provider reads the key from the connection's password when it builds its client.
        transport["auth"] = {"type": "airflow_connection_api_key", "conn_id": lineage.api_key_conn_id}
    return {**config, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport, sort_keys=True)}


def provider_installed() -> bool:
    """Whether the provider's distribution is installed (without importing Airflow for it)."""
    try:
        importlib.metadata.distribution(PROVIDER)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def provider_importable() -> bool:
    try:
        return importlib.util.find_spec("airflow.providers.openlineage") is not None
    except ImportError:
        return False


def environment_problems(lineage: LineageSettings) -> list[str]:
    """What keeps this process from emitting what the settings ask, one line each with the fix."""
    if not lineage.enabled:
        return []
    if not (provider_installed() and provider_importable()):
        return [f"lineage.enabled is true but {PROVIDER} is not installed: run `make lock` and rebuild the image"]
    from airflow.configuration import conf

    expected = {name: value for name, value in airflow_config(lineage).items() if not name.endswith("__DISABLED")}
    wrong = [
        name for name, value in expected.items() if not _same(conf.get("openlineage", _key(name), fallback=""), value)
    ]
    if conf.getboolean("openlineage", "disabled", fallback=False):
        wrong.insert(0, "AIRFLOW__OPENLINEAGE__DISABLED")
    if wrong:
        return [
            f"lineage.enabled is true but Airflow's {', '.join(wrong)} differ from the settings: set them in "
            "every Airflow process's environment to what `python -m include.blueprint.lineage` prints"
        ]
    return []


def _key(variable: str) -> str:
    return variable.removeprefix("AIRFLOW__OPENLINEAGE__").lower()


def _same(configured: str, expected: str) -> bool:
    if configured.strip().lower() == expected.lower():
        return True
    try:
        return json.loads(configured) == json.loads(expected)
    except ValueError:
        return False


class _DropLine(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def quiet() -> None:
    """Without the provider, drop the two lines that only say it is missing (before cosmos imports)."""
    if provider_installed():
        return
    for logger_name, start in _NOISE.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(existing, _DropLine) for existing in logger.filters):
            logger.addFilter(_DropLine(start))


def main() -> None:
    from include.blueprint.settings import load_settings

    parser = argparse.ArgumentParser(description="Print the Airflow settings the `lineage` settings need.")
    parser.parse_args()
    for name, value in airflow_config(load_settings().lineage).items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
