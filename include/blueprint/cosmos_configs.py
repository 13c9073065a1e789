"""The Cosmos configuration objects every execution mode shares, built from the settings."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Any

import airflow  # noqa: F401  # imported before cosmos: the reverse order raises a circular ImportError
from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.blueprint import cosmos_levers, cosmos_order
from include.blueprint.dag_specs import DagSpec
from include.blueprint.manifest import PACKAGE_FILES, require_fresh_manifest
from include.blueprint.names import runtime_name
from include.blueprint.settings import Settings

# dbt runs from its own venv, so Cosmos must start it as a subprocess: its default (dbtRunner,
# in-process) wrongly believes dbt is importable here whenever Cosmos itself is.
DBT_INVOCATION = InvocationMode.SUBPROCESS
cosmos_levers.install()
cosmos_order.install()


def partial_parse_cache(spec: DagSpec) -> Path | None:
    """The DAG's folder in Cosmos's cache, where its tasks hand dbt's partial parse to each other.
    Cosmos gives one to the tasks of a DbtDag; our own `dbt build` tasks (layer, single task) get
    the same, or each of their runs would parse the project from scratch."""
    from cosmos import cache
    from cosmos import settings as cosmos_settings

    if not cosmos_settings.enable_cache:
        return None
    return cache._obtain_cache_dir_path(cache_identifier=spec.dag_id.replace(".", "___"))


def project_config(spec: DagSpec, in_container: bool = False) -> ProjectConfig:
    """The project for rendering; container modes get the in-image path from ExecutionConfig."""
    manifest = require_fresh_manifest(spec.project_dir, spec.project.manifest_path)
    project = ProjectConfig(
        dbt_project_path=None if in_container else spec.project_dir,
        manifest_path=manifest,
        project_name=spec.project_name,
        install_dbt_deps=needs_dbt_deps(spec.project_dir),
    )
    # Cosmos wraps even a local manifest in ObjectStoragePath, whose first open loads every Airflow
    # plugin and provider: 0.7 s of each DAG file parse here, against 0.02 s with a plain path.
    project.manifest_path = manifest
    return project


def needs_dbt_deps(project_dir: Path) -> bool:
    """Whether the project declares packages whose install is missing. Decided once here:
    otherwise Cosmos probes the project folder (and logs about it) once per task at parse time,
    0.5 s per 1,000 models. `make manifest` installs them (hub and git packages need the network
    then); a task installs them itself only when dbt_packages/ did not travel with the project."""
    declared = any((project_dir / name).exists() for name in PACKAGE_FILES)
    return declared and not (project_dir / "dbt_packages").is_dir()


def profile_config(spec: DagSpec) -> ProfileConfig:
    # Cosmos writes the profile at run time and passes the password as an environment variable,
    # so it never appears in a rendered template field or in the DAG code.
    return ProfileConfig(
        profile_name=spec.project.profile,
        target_name=spec.settings.dbt.target,
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=spec.settings.warehouse.conn_id,
            profile_args={"schema": spec.project.target_schema},
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


def render_config(spec: DagSpec, *, detach_shared_tests: bool = True) -> RenderConfig:
    from include.blueprint.selection import select_and_exclude

    select, exclude = select_and_exclude(spec)
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        invocation_mode=DBT_INVOCATION,
        select=list(select),
        exclude=list(exclude),
        # Cosmos's assets carry the warehouse's host and port; ours (assets.py) are the same in
        # every environment, so a schedule written against dev fires in prod.
        emit_datasets=False,
        test_behavior=TEST_BEHAVIORS.get(spec.granularity, TestBehavior.AFTER_EACH),
        # A test reading two models (relationships) gets its own task after both; in either model's
        # task it would run before the other model is built, against a stale or missing table.
        should_detach_multiple_parents_tests=detach_shared_tests,
    )


def cosmos_dag(
    spec: DagSpec,
    description: str,
    execution_config: ExecutionConfig,
    operator_args: dict[str, Any] | None = None,
    *,
    in_container: bool = False,
) -> DbtDag:
    """A DbtDag with one task per dbt node, or per model with its tests (the spec's granularity);
    container modes get no profile (the image has one)."""
    if not spec.selects_everything:
        # dbt runs a test only with all its parents selected (the watcher's producer runs the
        # whole selection in one command; selection.drop_tests_outside_the_selection does the rest).
        execution_config.test_indirect_selection = TestIndirectSelection.CAUTIOUS
    from include.blueprint.render_shortcuts import cache_cosmos_signatures

    cache_cosmos_signatures(execution_config.execution_mode.value)
    return DbtDag(
        **dag_arguments(spec, description),
        project_config=project_config(spec, in_container=in_container),
        profile_config=None if in_container else profile_config(spec),
        # The watcher's producer runs every test after its models; Cosmos 1.15 never reports a
        # detached test to its task, which would then wait forever.
        render_config=render_config(spec, detach_shared_tests=spec.mode != "watcher"),
        execution_config=execution_config,
        operator_args={**run_parameters(), **(operator_args or {})},
    )


def run_parameters() -> dict[str, Any]:
    """Operator arguments filled from the trigger form (trigger_params.py) when a task starts."""
    from include.blueprint.trigger_params import operator_arguments

    return operator_arguments()


def dag_arguments(spec: DagSpec, description: str) -> dict[str, Any]:
    """Keyword arguments for a DAG or DbtDag: schedule, ownership, retry policy, trigger form."""
    from include.blueprint.assets import schedule_of
    from include.blueprint.trigger_params import dag_params

    policy = spec.policy
    start = policy.start_date
    return {
        "dag_id": spec.dag_id,
        "description": f"{spec.project_name}: {description}",
        "schedule": schedule_of(spec),
        "start_date": dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC),
        "catchup": False,
        # Two runs of one dbt DAG would build the same relations at once.
        "max_active_runs": 1,
        "tags": list(dict.fromkeys([*policy.tags, spec.project_name])),
        "params": dag_params(),
        # Container modes name their container groups and pods with this macro (see names.py).
        "user_defined_macros": {"runtime_name": partial(runtime_name, prefix=spec.settings.runtime.name_prefix)},
        "default_args": {
            "owner": policy.owner,
            "retries": policy.retries,
            "retry_delay": dt.timedelta(seconds=policy.retry_delay_seconds),
        },
    }


def add_dbt_callback(dag: Any, callback: Any) -> None:
    """`callback` after every dbt command of `dag`'s tasks that run dbt on this worker (Cosmos's
    local-like operators), in the command's temporary project copy, failed commands too."""
    for task in dag.tasks:
        if hasattr(task, "callback") and hasattr(task, "callback_args"):
            task.callback = [*as_list(task.callback), callback]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
