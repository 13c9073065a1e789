"""The Cosmos configuration objects every execution mode shares, built from the settings."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Any

import airflow  # noqa: F401  # imported before cosmos: the reverse order raises a circular ImportError
from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.blueprint.manifest import require_fresh_manifest
from include.blueprint.names import runtime_name
from include.blueprint.settings import Settings

# dbt runs from its own venv, so Cosmos must start it as a subprocess: its default (dbtRunner,
# in-process) wrongly believes dbt is importable here whenever Cosmos itself is.
DBT_INVOCATION = InvocationMode.SUBPROCESS


def project_config(settings: Settings, in_container: bool = False) -> ProjectConfig:
    """The project for rendering; container modes get the in-image path from ExecutionConfig."""
    manifest = require_fresh_manifest(settings.dbt.project_dir, settings.dbt.manifest_path)
    project = ProjectConfig(
        dbt_project_path=None if in_container else settings.dbt.project_dir,
        manifest_path=manifest,
        project_name=settings.dbt.profile,
        install_dbt_deps=needs_dbt_deps(settings),
    )
    # Cosmos wraps even a local manifest in ObjectStoragePath, whose first open loads every Airflow
    # plugin and provider: 0.7 s of each DAG file parse here, against 0.02 s with a plain path.
    project.manifest_path = manifest
    return project


def needs_dbt_deps(settings: Settings) -> bool:
    """Whether the project declares packages. Decided once here: otherwise Cosmos probes the
    project folder (and logs about it) once per task at parse time, 0.5 s per 1,000 models."""
    return any((settings.dbt.project_dir / name).exists() for name in ("packages.yml", "dependencies.yml"))


def profile_config(settings: Settings) -> ProfileConfig:
    # Cosmos writes the profile at run time and passes the password as an environment variable,
    # so it never appears in a rendered template field or in the DAG code.
    return ProfileConfig(
        profile_name=settings.dbt.profile,
        target_name=settings.dbt.target,
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=settings.warehouse.conn_id,
            profile_args={"schema": settings.warehouse.target_schema},
        ),
    )


WARM_DBT = Path(__file__).resolve().parent / "warm_dbt" / "dbt"


def dbt_command(settings: Settings) -> tuple[str, dict[str, str]]:
    """The dbt executable for tasks on the worker, and the environment it needs."""
    if not settings.dbt.warm_start:
        return str(settings.dbt.executable), {}
    return str(WARM_DBT), {"WARM_DBT_EXECUTABLE": str(settings.dbt.executable)}


# granularity -> how Cosmos runs a model's tests: in their own task, or in the model's `dbt build`.
TEST_BEHAVIORS = {"node": TestBehavior.AFTER_EACH, "model": TestBehavior.BUILD}


def render_config(granularity: str = "node", *, detach_shared_tests: bool = True) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        invocation_mode=DBT_INVOCATION,
        test_behavior=TEST_BEHAVIORS[granularity],
        # A test reading two models (relationships) gets its own task after both; in either model's
        # task it would run before the other model is built, against a stale or missing table.
        should_detach_multiple_parents_tests=detach_shared_tests,
    )


def cosmos_dag(
    dag_id: str,
    settings: Settings,
    description: str,
    execution_config: ExecutionConfig,
    operator_args: dict[str, Any] | None = None,
    *,
    in_container: bool = False,
) -> DbtDag:
    """A DbtDag with one task per dbt node, or per model with its tests (execution.granularity);
    container modes get no profile (the image has one)."""
    mode = execution_config.execution_mode.value  # the enum's values are our mode names
    return DbtDag(
        **dag_arguments(dag_id, settings, description),
        project_config=project_config(settings, in_container=in_container),
        profile_config=None if in_container else profile_config(settings),
        # The watcher's producer runs every test after its models; Cosmos 1.15 never reports a
        # detached test to its task, which would then wait forever.
        render_config=render_config(settings.execution.granularity_of(mode), detach_shared_tests=mode != "watcher"),
        execution_config=execution_config,
        operator_args=operator_args or {},
    )


def dag_arguments(dag_id: str, settings: Settings, description: str) -> dict[str, Any]:
    """Keyword arguments for a DAG or DbtDag: schedule, ownership and retry policy."""
    policy = settings.dags
    start = policy.start_date
    return {
        "dag_id": dag_id,
        "description": description,
        "schedule": policy.schedule,
        "start_date": dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC),
        "catchup": False,
        # Two runs of one dbt DAG would build the same relations at once.
        "max_active_runs": 1,
        "tags": list(policy.tags),
        # Container modes name their container groups and pods with this macro (see names.py).
        "user_defined_macros": {"runtime_name": partial(runtime_name, prefix=settings.runtime.name_prefix)},
        "default_args": {
            "owner": policy.owner,
            "retries": policy.retries,
            "retry_delay": dt.timedelta(seconds=policy.retry_delay_seconds),
        },
    }
