"""Run artifacts and the dbt docs task in object storage for real: Azure Blob Storage served by
Azurite on 127.0.0.1 (tests/azurite.py), reached through one Airflow connection defined by an
AIRFLOW_CONN_ variable, as a deployment defines it.

- A successful `dag.test()` run writes the docs site (with the warehouse's catalog) and every
  task's artifacts to their containers; Cosmos's UI plugin then serves that site from there.
- A failed run keeps the failed task's artifacts there, and its docs task does not run.
- Without the connection, the DAG file fails to import with one line naming it.
- `python -m include.blueprint.storage_check` writes there for real, and names in one line each a
  location it cannot write (a rotated key, a container that does not exist).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.azurite import ACCOUNT_KEY, Azurite, running_azurite
from tests.conftest import REPO_ROOT
from tests.integration.test_local_dags import run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, free_port

pytestmark = pytest.mark.integration
CONN_ID = "azure_dbt_storage"
CONN_VARIABLE = f"AIRFLOW_CONN_{CONN_ID.upper()}"
DOCS, ARTIFACTS = "dbt-docs", "dbt-artifacts"
SITE = ["catalog.json", "index.html", "manifest.json"]
KEPT = ["dbt.log", "manifest.json", "run_results.json"]


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with running_azurite(free_port()) as server:
        for container in (DOCS, ARTIFACTS):
            server.service().create_container(container)
        yield server


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow")


def _env(airflow_home: Path, postgres: ConnectionSettings, declaration: dict, schema: str, prefix: str) -> dict:
    """The DAG's environment: artifacts and docs under <container>/<prefix> through CONN_ID."""
    env = airflow_env(airflow_home, load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration]),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": schema,
        "BLUEPRINT__ARTIFACTS__LOCATION": f"abfs://{ARTIFACTS}/{prefix}",
        "BLUEPRINT__ARTIFACTS__CONN_ID": CONN_ID,
        "BLUEPRINT__DOCS__LOCATION": f"abfs://{DOCS}/{prefix}",
        "BLUEPRINT__DOCS__CONN_ID": CONN_ID,
    })  # fmt: skip
    migrate_metadata_db(env)
    return env


def _runs(azurite: Azurite, prefix: str, dag_id: str) -> list[str]:
    return sorted({name.split("/")[2] for name in azurite.names(ARTIFACTS, f"{prefix}/{dag_id}/")})


def test_a_successful_run_writes_docs_and_artifacts_to_blob_storage_and_the_ui_serves_the_docs(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path, azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    dag_id, prefix = "jaffle_shop_to_blob", "ok"
    declaration = {"id": "{project}_to_blob", "granularity": "project", "docs_after_build": True}
    env = _env(airflow_home, postgres, declaration, "e2e_blob", prefix)
    env[CONN_VARIABLE] = azurite.airflow_connection()

    summary, output = run_dag_process(dag_id, env)

    assert (summary["state"], summary["tasks"]) == ("success", {"dbt_build": "success", "dbt_docs": "success"}), output[
        -3000:
    ]
    assert azurite.names(DOCS, f"{prefix}/") == [f"{prefix}/jaffle_shop/{name}" for name in SITE]
    catalog = json.loads(azurite.read(DOCS, f"{prefix}/jaffle_shop/catalog.json"))
    customers = catalog["nodes"]["model.jaffle_shop.customers"]
    # The warehouse's catalog, which the offline docs of `make manifest` lack: schema and types.
    assert customers["metadata"]["schema"] == "e2e_blob"
    assert customers["columns"]["customer_id"]["type"] == "integer", customers["columns"]["customer_id"]
    assert f"dbt docs written to abfs://{DOCS}/{prefix}/jaffle_shop" in output

    [run] = _runs(azurite, prefix, dag_id)
    for task in ("dbt_build", "dbt_docs"):
        folder = f"{prefix}/{dag_id}/{run}/{task}/try_1"
        assert azurite.names(ARTIFACTS, folder + "/") == [f"{folder}/{name}" for name in KEPT], task
        assert f"dbt artifacts kept in abfs://{ARTIFACTS}/{folder}" in output
    kept = f"{prefix}/{dag_id}/{run}/dbt_build/try_1"
    results = json.loads(azurite.read(ARTIFACTS, f"{kept}/run_results.json"))["results"]
    assert {result["status"] for result in results} <= {"success", "pass"}
    nodes = json.loads(azurite.read(ARTIFACTS, f"{kept}/manifest.json"))["nodes"].values()
    built = [node for node in nodes if node["resource_type"] in ("seed", "model", "test")]
    assert len(results) == len(built), "every seed, model and test of the project"

    _the_ui_plugin_serves_the_site(azurite, env, prefix, catalog, monkeypatch)


def _the_ui_plugin_serves_the_site(
    azurite: Azurite, env: dict, prefix: str, catalog: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cosmos's Airflow 3 plugin, built from the value `make ui` and deployments set, reads the
    site from the container through the same connection."""
    from fastapi.testclient import TestClient

    from include.blueprint.dbt_docs import VARIABLE, docs_projects_json

    settings = load_settings({key: value for key, value in env.items() if key.startswith("BLUEPRINT")})
    value = docs_projects_json(settings)
    assert json.loads(value)["jaffle_shop"] == {
        "dir": f"abfs://{DOCS}/{prefix}/jaffle_shop", "conn_id": CONN_ID, "index": "index.html",
        "name": "dbt Docs (jaffle_shop)",
    }  # fmt: skip
    monkeypatch.setenv(VARIABLE, value)
    monkeypatch.setenv(CONN_VARIABLE, azurite.airflow_connection())
    from cosmos.plugin.airflow3 import create_cosmos_fastapi_app

    client = TestClient(create_cosmos_fastapi_app())
    page = client.get("/jaffle_shop/dbt_docs_index.html")
    assert page.status_code == 200, page.text[:500]
    assert "<title>dbt Docs</title>" in page.text, page.text[:500]
    served = client.get("/jaffle_shop/catalog.json")
    assert served.status_code == 200, served.text[:500]
    assert served.json()["nodes"]["model.jaffle_shop.customers"] == catalog["nodes"]["model.jaffle_shop.customers"]


def test_a_failed_task_keeps_its_artifacts_in_blob_storage_and_no_docs_are_written(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path, azurite: Azurite
) -> None:
    dag_id, prefix = "jaffle_shop_to_blob_failing", "failing"
    seed, model = "raw_customers_seed_build", "stg_orders_model_build"
    # stg_orders reads raw_orders, never loaded into this schema: dbt fails.
    declaration = {"id": "{project}_to_blob_failing", "select": ["raw_customers", "stg_orders"], "retries": 0,
                   "docs_after_build": True}  # fmt: skip
    env = _env(airflow_home, postgres, declaration, "e2e_blob_unseeded", prefix)
    env[CONN_VARIABLE] = azurite.airflow_connection()

    summary, output = run_dag_process(dag_id, env)

    expected = {seed: "success", model: "failed", "dbt_docs": "upstream_failed"}
    assert (summary["state"], summary["tasks"]) == ("failed", expected), output[-3000:]
    [run] = _runs(azurite, prefix, dag_id)
    failed = f"{prefix}/{dag_id}/{run}/{model}/try_1"
    assert azurite.names(ARTIFACTS, failed + "/") == [f"{failed}/{name}" for name in KEPT]
    results = json.loads(azurite.read(ARTIFACTS, f"{failed}/run_results.json"))["results"]
    assert {r["unique_id"]: r["status"] for r in results}["model.jaffle_shop.stg_orders"] == "error"
    assert "raw_orders" in azurite.read(ARTIFACTS, f"{failed}/dbt.log").decode()
    assert azurite.names(DOCS, f"{prefix}/") == [], "a failed build writes no docs"


def test_a_missing_connection_fails_the_dag_import_in_one_line(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path
) -> None:
    declaration = {"id": "{project}_to_blob", "granularity": "project", "docs_after_build": True}
    env = _env(airflow_home, postgres, declaration, "e2e_blob", "ok")
    env.pop(CONN_VARIABLE, None)

    summary, output = run_dag_process("jaffle_shop_to_blob", env)

    assert summary["state"] == "import_error", output[-3000:]
    [error] = summary["import_errors"].values()
    expected = (
        f"artifacts.conn_id: no Airflow connection '{CONN_ID}' is defined; add it ({CONN_VARIABLE}, "
        "a secrets backend or Admin > Connections) or point artifacts.conn_id at one"
    )
    assert expected in error.splitlines()[-1], error[-1500:]


def _storage_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.blueprint.storage_check"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_storage_check_writes_for_real_and_names_a_location_it_cannot_write(
    jaffle_project: Path, postgres: ConnectionSettings, airflow_home: Path, azurite: Azurite
) -> None:
    declaration = {"id": "{project}_to_blob", "granularity": "project", "docs_after_build": True}
    env = _env(airflow_home, postgres, declaration, "e2e_blob", "checked")
    env[CONN_VARIABLE] = azurite.airflow_connection()
    good = _storage_check(env)
    assert good.returncode == 0, good.stderr[-2000:]
    assert [line for line in good.stdout.splitlines() if line.startswith("ok: ")] == [
        f"ok: artifacts can be written at abfs://{ARTIFACTS}/checked",
        f"ok: docs can be written at abfs://{DOCS}/checked",
    ]
    assert azurite.names(ARTIFACTS, "checked/") == azurite.names(DOCS, "checked/") == [], "the probe is deleted"

    # A key the account does not accept, as after a key rotation; and a container that does not exist.
    wrong_key = azurite.airflow_connection().replace(ACCOUNT_KEY[:12], "A" * 12)
    env.update({CONN_VARIABLE: wrong_key, "BLUEPRINT__DOCS__CONN_ID": "azure_docs",
                "AIRFLOW_CONN_AZURE_DOCS": azurite.airflow_connection(),
                "BLUEPRINT__DOCS__LOCATION": "abfs://no-such-container/checked"})  # fmt: skip
    bad = _storage_check(env)
    assert bad.returncode == 1, bad.stdout + bad.stderr[-2000:]
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, bad.stderr[-3000:]
    assert errors[0].startswith(
        f"error: artifacts.location: abfs://{ARTIFACTS}/checked cannot be written through connection '{CONN_ID}': "
    ), errors[0]
    assert errors[1].startswith(
        "error: docs.location: abfs://no-such-container/checked cannot be written through connection 'azure_docs': "
    ), errors[1]
    assert ACCOUNT_KEY[12:] not in bad.stderr, "the account key is never printed"
