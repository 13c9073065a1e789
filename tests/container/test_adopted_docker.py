"""Adopted projects in the docker mode, end to end: in a fork of this repository into which a team
adopted `acme` and a generated `synthetic` project (tests/conftest.py adopted_fork), each project
gets its own dbt runtime image from the fork's ci/build-image.sh (DBT_PROJECT=dbt/<name>), named in
`projects.<name>.image`, and its `<name>_docker` DAG runs with `dag.test()`: one container per
model through Cosmos's ExecutionMode.DOCKER, a real engine and the real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT, SYNTHETIC_MODELS
from tests.container.conftest import IMAGE as JAFFLE_SHOP_IMAGE
from tests.fixtures.dbt_projects import ACME_MODELS, ACME_RAW_SQL
from tests.forks import fork_airflow_env, row_counts, run_fork_dag
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.container]

ADOPTED = ("acme", "synthetic")  # the projects tests/conftest.py adopted_fork adopts


def _schema(project: str) -> str:
    """The docker runs' own target schema: the local-mode tests build into `<project>`."""
    return f"{project}_docker"


@pytest.fixture(scope="module")
def fork_wheelhouse(docker_engine: None, adopted_fork: Path) -> Path:
    """The fork's .local/wheelhouse is the main repository's: the wheels are downloaded once.

    ci/build-image.sh keeps them under .local/ of the checkout it runs in, and a fork starts with
    none; a wheelhouse a build in the fork completes is then there for the main repository too.
    """
    shared = REPO_ROOT / ".local" / "wheelhouse"
    shared.mkdir(parents=True, exist_ok=True)
    link = adopted_fork / ".local" / "wheelhouse"
    link.parent.mkdir(exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(shared, target_is_directory=True)
    return link


def build_fork_image(fork: Path, project: str, database: ConnectionSettings) -> str:
    """The fork's `ci/build-image.sh` for dbt/<project>, parsed with the database and schema the
    DAG runs with (so the baked partial parse is reused); returns the image reference."""
    name = f"airflow-dbt-blueprint/dbt-runtime-{project}"
    result = subprocess.run(
        ["bash", "ci/build-image.sh"], cwd=fork, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "DBT_PROJECT": f"dbt/{project}", "IMAGE_NAME": name,
             "PARSE_DATABASE": database.database, "PARSE_SCHEMA": _schema(project)},
    )  # fmt: skip
    assert result.returncode == 0, (
        f"ci/build-image.sh ({project}) failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
    )
    labels = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", f"{name}:local"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(labels)["org.opencontainers.image.title"] == f"dbt runtime ({project})"
    return f"{name}:local"


@pytest.fixture(scope="module")
def acme_image(fork_wheelhouse: Path, adopted_fork: Path, postgres: ConnectionSettings) -> str:
    return build_fork_image(adopted_fork, "acme", postgres)


@pytest.fixture(scope="module")
def synthetic_image(fork_wheelhouse: Path, adopted_fork: Path, postgres: ConnectionSettings) -> str:
    return build_fork_image(adopted_fork, "synthetic", postgres)


@pytest.fixture(scope="module")
def fork_airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow")


def docker_env(fork: Path, home: Path, postgres: ConnectionSettings, project: str, image: str) -> dict[str, str]:
    """The fork's Airflow environment with only the docker mode enabled, `project` in `image`.

    Each adopted project gets the one DAG `make adopt` registers, `<name>_docker`, building every
    node, whatever other DAGs the fork's registrations declare (tests/integration covers those).
    """
    key = project.upper()
    overrides = {
        "BLUEPRINT__EXECUTION__ENABLED_MODES": "[docker]",
        # The engine here has no bridge network: containers share the host's, and so reach the
        # tests' PostgreSQL on 127.0.0.1.
        "BLUEPRINT__DOCKER__NETWORK_MODE": "host",
        f"BLUEPRINT__PROJECTS__{key}__IMAGE": image,
        f"BLUEPRINT__PROJECTS__{key}__TARGET_SCHEMA": _schema(project),
        # Required while a project without an image of its own (jaffle_shop) is registered.
        "BLUEPRINT__RUNTIME__IMAGE": JAFFLE_SHOP_IMAGE,
    }
    for name in ADOPTED:
        overrides[f"BLUEPRINT__PROJECTS__{name.upper()}__DAGS"] = '[{id: "{project}_{mode}"}]'
    env = fork_airflow_env(fork, airflow_env(home, load_settings(), postgres))
    env.update(overrides)
    migrate_metadata_db(env)
    return env


def assert_ran_in(image: str, logs: str, password: str) -> None:
    """Every container started from `image`, reused its baked partial parse, and logged no password."""
    started = set(re.findall(r"Starting docker container from image (\S+)", logs))
    assert started == {image}, started
    # The image was parsed with the DAG's database and schema: no container re-parsed the project.
    assert "Unable to do partial parsing" not in logs
    # The password reached every container (the tables exist), yet appears nowhere in the output.
    assert password not in logs


def test_acme_runs_in_its_own_image_in_the_docker_mode(
    adopted_fork: Path, acme_image: str, fork_airflow_home: Path, postgres: ConnectionSettings
) -> None:
    env = docker_env(adopted_fork, fork_airflow_home, postgres, "acme", acme_image)
    postgres.query(ACME_RAW_SQL)  # the sources a loader would have landed
    # One run (the local-mode test runs the incremental model's second pass).
    summary, logs = run_fork_dag(adopted_fork, "acme_docker", env)
    assert summary["state"] == "success", f"{summary}\n{logs[-8000:]}"
    assert set(summary["tasks"].values()) == {"success"}, summary
    assert set(summary["models"].values()) == {"success"}, summary
    assert set(summary["models"]) == {f"acme.{name}" for name in ACME_MODELS}
    counts = row_counts(postgres, _schema("acme"))
    assert {name: counts.get(name) for name in ACME_MODELS} == ACME_MODELS
    assert "Running command: ['dbt', 'build', '--select', 'fqn:acme.marts.core.fct_orders'" in logs
    assert_ran_in(acme_image, logs, postgres.password)


def test_the_synthetic_project_runs_in_its_own_image_in_the_docker_mode(
    adopted_fork: Path, synthetic_image: str, fork_airflow_home: Path, postgres: ConnectionSettings
) -> None:
    env = docker_env(adopted_fork, fork_airflow_home, postgres, "synthetic", synthetic_image)
    summary, logs = run_fork_dag(adopted_fork, "synthetic_docker", env)
    assert summary["state"] == "success", f"{summary}\n{logs[-8000:]}"
    assert set(summary["tasks"].values()) == {"success"}, summary
    counts = row_counts(postgres, _schema("synthetic"))
    assert len(counts) == SYNTHETIC_MODELS + 1  # and the seed
    assert set(counts.values()) == {10}  # every model keeps the seed's 10 ids
    assert_ran_in(synthetic_image, logs, postgres.password)
