"""The dbt docs task's default: one `dag.test()` run writes the site, with the warehouse's catalog,
into a local folder, and Cosmos's UI plugin serves it from there. (Object storage:
test_object_storage.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.integration.test_local_dags import run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration


def test_the_docs_task_writes_the_site_to_a_local_folder_that_the_ui_serves(
    jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    declaration = {"id": "{project}_docs", "granularity": "project", "docs_after_build": True}
    env = airflow_env(tmp_path / "airflow", load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration]),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": "e2e_docs",
        "BLUEPRINT__DOCS__LOCATION": str(docs),
    })  # fmt: skip
    migrate_metadata_db(env)

    summary, output = run_dag_process("jaffle_shop_docs", env)

    assert (summary["state"], summary["tasks"]) == ("success", {"dbt_build": "success", "dbt_docs": "success"}), output[
        -3000:
    ]
    site = docs / "jaffle_shop"
    assert sorted(path.name for path in site.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    orders = json.loads((site / "catalog.json").read_text())["nodes"]["model.jaffle_shop.orders"]
    assert orders["metadata"]["schema"] == "e2e_docs"
    assert orders["columns"]["order_id"]["type"] == "integer", orders["columns"]["order_id"]
    assert f"dbt docs written to {site}" in output

    from fastapi.testclient import TestClient

    from include.blueprint.dbt_docs import VARIABLE, docs_projects_json

    served_settings = load_settings({"BLUEPRINT__DOCS__LOCATION": str(docs), "BLUEPRINT__DOCS__AFTER_BUILD": "true"})
    monkeypatch.setenv(VARIABLE, docs_projects_json(served_settings))
    from cosmos.plugin.airflow3 import create_cosmos_fastapi_app

    client = TestClient(create_cosmos_fastapi_app())
    served = client.get("/jaffle_shop/catalog.json")
    assert served.status_code == 200, served.text[:500]
    assert served.json()["nodes"]["model.jaffle_shop.orders"] == orders
