"""Run artifacts on a real DAG run: one `dag.test()` run of a two-task DAG where a seed loads and
a model fails (its own seed was never loaded into the schema). Both tries keep run_results.json,
manifest.json and dbt.log, the failed one with the failing node; the log of each task ends with
dbt's summary; a run older than the retention is swept, a recent one kept."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.integration.test_local_dags import run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration
DAG_ID = "jaffle_shop_artifacts"
SEED_TASK, MODEL_TASK = "raw_customers_seed_build", "stg_orders_model_build"
KEPT = ["dbt.log", "manifest.json", "run_results.json"]


def _old_run(location: Path, run_id: str, days: float) -> Path:
    """A run folder as an earlier upload left it, last written `days` ago."""
    kept = location / DAG_ID / run_id / MODEL_TASK / "try_1" / "run_results.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    written = time.time() - days * 86400
    os.utime(kept, (written, written))
    return location / DAG_ID / run_id


def test_both_tries_keep_their_artifacts_and_the_log_ends_with_the_summary(
    jaffle_project: Path, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    location = tmp_path / "artifacts"
    expired, recent = _old_run(location, "scheduled__old", days=8), _old_run(location, "scheduled__recent", days=6)
    # raw_customers loads; stg_orders reads raw_orders, never loaded into this schema: dbt fails.
    declaration = {"id": "{project}_artifacts", "select": ["raw_customers", "stg_orders"], "retries": 0}
    env = airflow_env(tmp_path / "airflow", load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration]),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": "e2e_artifacts_unseeded",
        "BLUEPRINT__ARTIFACTS__LOCATION": str(location),
        "BLUEPRINT__ARTIFACTS__RETENTION_DAYS": "7",
    })  # fmt: skip
    migrate_metadata_db(env)

    summary, output = run_dag_process(DAG_ID, env)

    assert (summary["state"], summary["tasks"]) == ("failed", {SEED_TASK: "success", MODEL_TASK: "failed"}), output[
        -3000:
    ]
    assert not expired.exists(), "a run past retention_days is swept"
    assert recent.exists(), "a run within retention_days is kept"
    [run] = [path for path in (location / DAG_ID).iterdir() if path.name not in ("scheduled__recent",)]
    assert run.name.startswith("manual__")

    failed = run / MODEL_TASK / "try_1"
    assert sorted(path.name for path in failed.iterdir()) == KEPT
    results = json.loads((failed / "run_results.json").read_text())["results"]
    statuses = {result["unique_id"]: result["status"] for result in results}
    assert statuses.pop("model.jaffle_shop.stg_orders") == "error"
    assert set(statuses.values()) == {"skipped"}, "its tests, skipped"
    assert "model.jaffle_shop.stg_orders" in json.loads((failed / "manifest.json").read_text())["nodes"]
    assert "raw_orders" in (failed / "dbt.log").read_text()  # dbt's own log of the failed command

    succeeded = run / SEED_TASK / "try_1"
    assert sorted(path.name for path in succeeded.iterdir()) == KEPT
    [result] = json.loads((succeeded / "run_results.json").read_text())["results"]
    assert (result["unique_id"], result["status"]) == ("seed.jaffle_shop.raw_customers", "success")

    # Each task's log: where its artifacts went, then the summary as its last dbt lines.
    assert f"dbt artifacts kept in {location}/{DAG_ID}/{run.name}/{SEED_TASK}/try_1" in output
    assert "dbt summary: 1 node(s): 1 success, 0 pass, 0 warn, 0 error, 0 fail, 0 skip" in output
    assert f"dbt summary: {len(results)} node(s): 0 success, 0 pass, 0 warn, 1 error, 0 fail, 4 skip" in output
    [failure] = [line for line in output.splitlines() if "dbt error: model.jaffle_shop.stg_orders" in line]
    assert "Database Error in model stg_orders (models/staging/stg_orders.sql): relation " in failure
    assert 'raw_orders" does not exist' in failure  # the cause, from dbt's second message line
    assert "compiled SQL target/compiled/jaffle_shop/models/staging/stg_orders.sql" in failure
    assert output.index(f"dbt artifacts kept in {location}/{DAG_ID}/{run.name}/{MODEL_TASK}") < output.index(failure)
