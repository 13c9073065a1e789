"""The Airflow scheduling settings the project ships (README "Run time under a real scheduler"):
set once, in the deploy image's Dockerfile, and from there in every local run's environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT
from tools.airflow_services import LocalAirflow
from tools.local_env import airflow_env, image_airflow_config
from tools.postgres import ConnectionSettings

# What the scheduler benchmark measured worth shipping (the README's table).
SHIPPED = {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25"}
DATABASE = ConnectionSettings("127.0.0.1", 5432, "u", "p", "d")


def test_the_deploy_image_sets_the_shipped_scheduling_settings() -> None:
    assert image_airflow_config() == SHIPPED


def test_every_local_airflow_gets_them_over_the_callers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "7")  # the developer's shell
    env = airflow_env(tmp_path, load_settings(), DATABASE)
    assert SHIPPED.items() <= env.items()
    assert SHIPPED.items() <= LocalAirflow(tmp_path, env, DATABASE).env.items()  # tests and benchmarks


def test_the_local_stack_does_not_override_the_image(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())
    environments = [compose["x-airflow"]["environment"]]
    environments += [service.get("environment") or {} for service in compose["services"].values()]
    assert not [key for environment in environments for key in SHIPPED if key in environment]


def test_image_airflow_config_reads_env_instructions_only(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM base\n"
        "ENV OTHER=1 \\\n    AIRFLOW__CORE__PARALLELISM=\"8\"\n"
        "RUN echo AIRFLOW__CORE__LOAD_EXAMPLES=True\n"
        "ENV AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.5\n"
    )  # fmt: skip
    assert image_airflow_config(dockerfile) == {
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    }
    dockerfile.write_text("FROM base\nENV OTHER=1\n")
    assert image_airflow_config(dockerfile) == {}
