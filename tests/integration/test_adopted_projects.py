"""Real project shapes, adopted the way a team would: in a fork of this repository, `acme` (sources
with freshness, a seed, a snapshot, ephemeral and incremental models, macros, a local package,
an exposure, selectors) and a generated synthetic project are adopted with the one command. Their
DAGs then run end to end in the local mode, and the repository's own DAG tests pass in the fork
without an edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.fixtures.dbt_projects import ACME_MODELS, ACME_RAW_SQL
from tests.forks import fork_airflow_env, row_counts, run_fork_dag, run_in
from tools.local_env import airflow_env, migrate_metadata_db
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
    assert listed.stdout.split() == ["['acme_local',", "'synthetic_local']"]  # jaffle_shop is hidden (enabled: false)
    assert (adopted_fork / "include/blueprint/config/projects/acme.yaml").exists()
    assert (adopted_fork / "dbt/acme/target/manifest.json").exists()


def test_acme_runs_in_the_local_mode_twice_with_the_right_rows(
    adopted_fork: Path, fork_env: dict, postgres: ConnectionSettings
) -> None:
    for attempt in ("first", "second (incremental)"):
        summary, logs = run_fork_dag(adopted_fork, "acme_local", fork_env)
        assert summary["state"] == "success", f"{attempt} run: {summary}\n{logs[-6000:]}"
    counts = row_counts(postgres, "acme")
    assert {name: counts.get(name) for name in ACME_MODELS} == ACME_MODELS
    assert set(summary["models"].values()) == {"success"}
    assert "acme.fct_orders" in summary["models"]
    assert "acme.int_order_totals" not in summary["models"]  # ephemeral: nothing to build or schedule on


def test_the_synthetic_project_runs_in_the_local_mode(
    adopted_fork: Path, fork_env: dict, postgres: ConnectionSettings
) -> None:
    summary, logs = run_fork_dag(adopted_fork, "synthetic_local", fork_env)
    assert summary["state"] == "success", f"{summary}\n{logs[-6000:]}"
    counts = row_counts(postgres, "synthetic")
    assert len(counts) == 31  # 30 models and the seed
    assert set(counts.values()) == {10}  # every model keeps the seed's 10 ids


def test_the_repositorys_dag_tests_pass_in_the_fork_without_an_edit(adopted_fork: Path) -> None:
    result = run_in(adopted_fork, "-m", "pytest", "tests/dags", "-q", "-p", "no:cacheprovider", "-x", timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
