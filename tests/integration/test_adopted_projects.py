"""Real project shapes, adopted the way a team would: in a fork of this repository, `acme` (sources
with freshness, a seed, a snapshot, ephemeral and incremental models, macros, a local package,
an exposure, selectors) and a generated synthetic project are adopted with the one command. Their
DAGs then run end to end in the local mode, and the repository's own DAG tests pass in the fork
without an edit."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import SYNTHETIC_MODELS
from tests.fixtures.dbt_projects import ACME_MODELS, ACME_RAW_SQL
from tests.forks import fork_airflow_env, row_counts, run_fork_dag, run_in
from tools.airflow_db import migrate_metadata_db
from tools.local_env import QUIET_DBT, airflow_env
from tools.manifest import PARSE_PLACEHOLDERS
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fork_env(adopted_fork: Path, postgres: ConnectionSettings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = fork_airflow_env(adopted_fork, airflow_env(tmp_path_factory.mktemp("airflow"), load_settings(), postgres))
    migrate_metadata_db(env)
    postgres.query(ACME_RAW_SQL)  # the sources a loader would have landed
    return env


def test_each_adopted_project_is_registered_with_dags_named_after_it(adopted_fork: Path) -> None:
    listed = run_in(adopted_fork, "-c", "from include.blueprint.dag_specs import dag_specs\n"
                    "from include.blueprint.settings import load_settings\n"
                    "print(sorted(s.dag_id for s in dag_specs(load_settings())))")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    # acme: the README's three DAGs; synthetic: what adopt registered; jaffle_shop: hidden (enabled: false)
    assert listed.stdout.split() == ["['acme_finance_local',", "'acme_hourly_local',", "'acme_nightly_local',",
                                     "'synthetic_local']"]  # fmt: skip
    assert (adopted_fork / "include/blueprint/config/projects/acme.yaml").exists()
    assert (adopted_fork / "dbt/acme/target/manifest.json").exists()


def test_acmes_three_dags_run_in_the_local_mode_with_the_right_rows(
    adopted_fork: Path, fork_env: dict, postgres: ConnectionSettings
) -> None:
    """The hourly slice twice (its incremental model's second pass), the nightly rest, and finance."""
    models: dict[str, str] = {}
    for dag_id in ("acme_hourly_local", "acme_hourly_local", "acme_nightly_local", "acme_finance_local"):
        summary, logs = run_fork_dag(adopted_fork, dag_id, fork_env)
        assert summary["state"] == "success", f"{dag_id}: {summary}\n{logs[-6000:]}"
        models.update(summary["models"])
    counts = row_counts(postgres, "acme")
    assert {name: counts.get(name) for name in ACME_MODELS} == ACME_MODELS
    # every model, seed and snapshot built by exactly one of the three DAGs, each successfully
    assert set(models) == {f"acme.{name}" for name in ACME_MODELS}
    assert set(models.values()) == {"success"}


def test_stale_sources_stop_the_hourly_dag_before_any_model(
    adopted_fork: Path, fork_env: dict, postgres: ConnectionSettings
) -> None:
    postgres.query("update acme_raw.orders set _loaded_at = now() - interval '3 days'")  # past error_after
    try:
        summary, logs = run_fork_dag(adopted_fork, "acme_hourly_local", fork_env)
    finally:
        postgres.query(ACME_RAW_SQL)  # fresh again for the other tests
    assert summary["tasks"].pop("source_freshness") == "failed", summary
    assert set(summary["tasks"].values()) == {"upstream_failed"}, summary
    assert "ERROR STALE" in logs
    assert "shop_raw.orders" in logs


def test_the_synthetic_project_runs_in_the_local_mode(
    adopted_fork: Path, fork_env: dict, postgres: ConnectionSettings
) -> None:
    summary, logs = run_fork_dag(adopted_fork, "synthetic_local", fork_env)
    assert summary["state"] == "success", f"{summary}\n{logs[-6000:]}"
    counts = row_counts(postgres, "synthetic")
    assert len(counts) == SYNTHETIC_MODELS + 1  # and the seed
    assert set(counts.values()) == {10}  # every model keeps the seed's 10 ids


# What each acme DAG selects, as `dbt ls` resolves its declaration (models, seeds, snapshots).
ACME_DBT_LS = {
    "acme_hourly_local": ["--selector", "hourly"],
    "acme_nightly_local": ["--exclude", "+tag:hourly", "tag:finance"],
    "acme_finance_local": ["--select", "tag:finance", "--exclude", "tag:hourly"],
}
PROBE = """
import json, sys
from include.blueprint.dag_specs import dag_specs
from include.blueprint.pipelines import built_by
from include.blueprint.settings import load_settings
print(json.dumps({s.dag_id: sorted(built_by(s)) for s in dag_specs(load_settings()) if s.project_name == "acme"}))
"""


def test_each_acme_dag_builds_what_dbt_ls_selects(adopted_fork: Path) -> None:
    """Selections are resolved from the manifest by Cosmos's engine; they must mean what dbt means."""
    probe = run_in(adopted_fork, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr[-3000:]
    built = json.loads(probe.stdout.strip().splitlines()[-1])
    project = adopted_fork / "dbt" / "acme"
    for dag_id, selection in ACME_DBT_LS.items():
        listed = subprocess.run(
            [str(adopted_fork / ".venvs/dbt/bin/dbt"), "ls", *selection, "--resource-type", "model", "seed",
             "snapshot", "--output", "json", "--output-keys", "name config", "--project-dir", str(project),
             "--profiles-dir", str(project), "-q"],
            env={**os.environ, **PARSE_PLACEHOLDERS, "POSTGRES_SCHEMA": "acme", **QUIET_DBT},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stdout[-2000:]
        nodes = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
        expected = sorted(f"acme.{node['name']}" for node in nodes if node["config"]["materialized"] != "ephemeral")
        assert built[dag_id] == expected, dag_id


def test_the_repositorys_dag_tests_pass_in_the_fork_without_an_edit(adopted_fork: Path) -> None:
    result = run_in(
        adopted_fork,
        "-m",
        "pytest",
        "tests/dags",
        "-q",
        "-p",
        "no:cacheprovider",
        "-x",
        "--tb=short",
        "--show-capture=no",
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
