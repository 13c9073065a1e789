"""The typed settings of the dbt DAGs, loaded once from YAML layers and environment overrides.

Layers, later ones winning: `config/base.yaml`, then every `config/projects/<name>.yaml` (one
per dbt project, written by `make adopt`), then `config/<BLUEPRINT_ENV>.yaml` when BLUEPRINT_ENV
is set, then environment variables `BLUEPRINT__<SECTION>__<KEY>`. Every problem in
the result is reported at once, each with the layer it came from, in one `BlueprintConfigError`.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import Field, ValidationError, field_validator

from include.blueprint import artifact_settings, docs_settings
from include.blueprint.alert_settings import AlertSettings
from include.blueprint.artifact_settings import ArtifactSettings
from include.blueprint.declarations import NAME_PATTERN, ProjectSettings
from include.blueprint.docs_settings import DocsSettings
from include.blueprint.lineage_settings import LineageSettings
from include.blueprint.merge import deep_merge, leaf_paths
from include.blueprint.runtime import (
    ALL_GRANULARITIES,
    MODE_REQUIREMENTS,
    AwsEcsSettings,
    AwsEksSettings,
    AzureContainerInstanceSettings,
    ContainerRuntime,
    DockerSettings,
    GcpCloudRunJobSettings,
    Granularity,
    KubernetesSettings,
    ModeName,
    granularities_of,
)
from include.blueprint.runtime import (
    Section as _Section,
)
from include.blueprint.storage import resolve_location

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = Path(__file__).resolve().parent / "config"
ENV_PREFIX = "BLUEPRINT__"
ENVIRONMENT_VARIABLE = "BLUEPRINT_ENV"


class BlueprintConfigError(ValueError):
    """Configuration that cannot work; the message lists every problem and where it was set."""


class DbtSettings(_Section):
    executable: Path
    # Local and watcher tasks start dbt as a fork of a process that has already imported it.
    warm_start: bool = True
    target: str = Field(min_length=1)


class WarehouseSettings(_Section):
    conn_id: str = Field(min_length=1)


class DagPolicy(_Section):
    owner: str = Field(min_length=1)
    schedule: str | None
    start_date: dt.date
    retries: int = Field(ge=0, le=10)
    retry_delay_seconds: int = Field(gt=0)
    tags: list[str] = Field(min_length=1)


class ExecutionSettings(_Section):
    # The modes whose DAGs this deployment shows; dags/ has one file per mode.
    enabled_modes: list[ModeName] = Field(min_length=1)
    # virtualenv mode: the requirements Cosmos installs into its cached venv (dbt's own lock).
    virtualenv_requirements: Path
    virtualenv_dir: Path
    # Per mode: how many dbt nodes one task runs. One value for all modes is allowed too (e.g.
    # BLUEPRINT__EXECUTION__GRANULARITY=layer); it then applies to every mode that supports it.
    granularity: dict[ModeName, Granularity] = Field(default_factory=dict)
    # watcher mode: its per-node tasks wait for the producer's report on their node. Deferred,
    # they free their worker slot but resume only through the triggerer and a second task start.
    watcher_deferrable: bool
    watcher_poke_seconds: float = Field(gt=0, le=60)

    @field_validator("granularity", mode="before")
    @classmethod
    def _one_value_for_every_mode(cls, value: Any) -> Any:
        if isinstance(value, str) and value in ALL_GRANULARITIES:
            return {mode: value for mode in get_args(ModeName) if value in granularities_of(mode)}
        return value

    def granularity_of(self, mode: str) -> str:
        return self.granularity.get(mode, "node")  # type: ignore[call-overload]


class SweeperSettings(_Section):
    """The maintenance DAG that deletes leftover dbt containers and ACI groups (sweeper.py)."""

    enabled: bool
    schedule: str = Field(min_length=1)
    # A container this young is never deleted: its task may be starting, or its state not yet written.
    grace_minutes: int = Field(ge=0, le=1440)
    # The owner label every container gets; deployments sharing an engine or resource group differ.
    deployment: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(schedule):
            raise ValueError("not a cron expression or preset such as @hourly")
        return schedule


class Settings(_Section):
    dbt: DbtSettings
    warehouse: WarehouseSettings
    dags: DagPolicy
    projects: dict[str, ProjectSettings] = Field(min_length=1)
    execution: ExecutionSettings
    runtime: ContainerRuntime
    docker: DockerSettings
    azure_container_instance: AzureContainerInstanceSettings
    kubernetes: KubernetesSettings
    aws_ecs: AwsEcsSettings
    aws_eks: AwsEksSettings
    gcp_cloud_run_job: GcpCloudRunJobSettings
    sweeper: SweeperSettings
    # The deployment's default; a DAG declaration's own `alerts` replaces it.
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    # Each dbt task's run_results.json, manifest.json and dbt.log, per DAG run and try.
    artifacts: ArtifactSettings
    # OpenLineage events of the dbt tasks (off by default).
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    # The optional `dbt docs generate` task after a DAG's build, and where it writes the site.
    docs: DocsSettings

    @field_validator("projects")
    @classmethod
    def _project_names(cls, projects: dict[str, ProjectSettings]) -> dict[str, ProjectSettings]:
        wrong = [name for name in projects if not re.match(NAME_PATTERN, name)]
        if wrong:
            raise ValueError(f"project names are lowercase letters, digits and _: rename {', '.join(wrong)}")
        return projects

    def mode_enabled(self, mode: str) -> bool:
        return mode in self.execution.enabled_modes

    def project(self, name: str | None = None) -> ProjectSettings:
        """A registered project; without a name, the only enabled one (or the first registered)."""
        if name is None:
            enabled = [project for project in self.projects.values() if project.enabled]
            return (enabled or list(self.projects.values()))[0]
        try:
            return self.projects[name]
        except KeyError:
            known = ", ".join(self.projects)
            raise BlueprintConfigError(f"no dbt project {name!r} is registered; registered: {known}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BlueprintConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise BlueprintConfigError(f"{path}: expected a mapping of sections at the top level")
    return loaded


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    layers = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        # YAML-parse the value so that "3" is a number and "[a, b]" a list, as in the files.
        value: Any = yaml.safe_load(environ[name]) if environ[name] else environ[name]
        for key in reversed(keys):
            value = {key: value}
        layers.append((name, value))
    return layers


def _layers(environ: Mapping[str, str], config_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    layers = [(str(config_dir / "base.yaml"), _read_yaml(config_dir / "base.yaml"))]
    layers += [(str(path), _read_yaml(path)) for path in sorted((config_dir / "projects").glob("*.yaml"))]
    environment = environ.get(ENVIRONMENT_VARIABLE)
    if environment:
        overlay = config_dir / f"{environment}.yaml"
        if not overlay.exists():
            known = sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem != "base")
            raise BlueprintConfigError(
                f"{ENVIRONMENT_VARIABLE}={environment!r} has no file {overlay}; "
                f"known environments: {', '.join(known) or 'none'}"
            )
        layers.append((str(overlay), _read_yaml(overlay)))
    return layers + _env_overrides(environ)


def _source_of(location: tuple[str, ...], sources: Mapping[tuple[str, ...], str]) -> str:
    for length in range(len(location), 0, -1):
        if location[:length] in sources:
            return sources[location[:length]]
    return f"not set anywhere; add it to {CONFIG_DIR / 'base.yaml'}"


# "alerts", "lineage": a webhook or receiver URL written there by mistake carries its token.
_SECRET_HINTS = ("password", "secret", "token", "environment", "alerts", "lineage")


def _may_hold_a_secret(location: tuple[str, ...]) -> bool:
    return any(hint in part.lower() for part in location for hint in _SECRET_HINTS)


def _describe(error: ValidationError, sources: Mapping[tuple[str, ...], str]) -> list[str]:
    problems = []
    for item in error.errors():
        location = tuple(str(part) for part in item["loc"])
        key = ".".join(location)
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against config/base.yaml)"
        elif item["type"] == "missing":
            message = "missing"
        elif _may_hold_a_secret(location):
            message = item["msg"]  # never echo what may be a credential into an import error
        else:
            message = f"{item['msg']} (got {item.get('input')!r})"
        problems.append(f"{key}: {message} [{_source_of(location, sources)}]")
    return problems


# Sections writing to a location, and their folder under BLUEPRINT_LOCAL_DIR when it is null.
_LOCAL_FOLDERS = {"artifacts": artifact_settings.DEFAULT_FOLDER, "docs": docs_settings.DEFAULT_FOLDER}
_REPO_RELATIVE_PATHS = {
    "dbt": ("executable",),
    "execution": ("virtualenv_requirements", "virtualenv_dir"),
}


def _resolve(values: dict[str, Any], keys: tuple[str, ...], repo_root: Path) -> dict[str, Any]:
    resolved = dict(values)
    for key in keys:
        if isinstance(resolved.get(key), str) and resolved[key]:
            resolved[key] = str(repo_root / resolved[key])  # absolute paths stay as they are
    return resolved


def _resolve_paths(raw: dict[str, Any], repo_root: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    resolved = dict(raw)
    for section, folder in _LOCAL_FOLDERS.items():
        values = raw.get(section) or {}
        if isinstance(values, dict):
            location = resolve_location(values.get("location"), environ, repo_root, folder)
            resolved[section] = {**values, "location": location}
    for section, keys in _REPO_RELATIVE_PATHS.items():
        if isinstance(raw.get(section), dict):
            resolved[section] = _resolve(raw[section], keys, repo_root)
    if isinstance(raw.get("projects"), dict):
        resolved["projects"] = {
            name: _resolve(project, ("project_dir",), repo_root) if isinstance(project, dict) else project
            for name, project in raw["projects"].items()
        }
    return resolved


def _unmet_mode_requirements(settings: Settings, sources: Mapping[tuple[str, ...], str]) -> list[str]:
    problems = []
    for mode in settings.execution.enabled_modes:
        for dotted in MODE_REQUIREMENTS[mode]:
            section, key = dotted.split(".")
            if dotted == "runtime.image" and all(project.image for project in settings.projects.values()):
                continue  # every project names its own image
            if not getattr(getattr(settings, section), key):
                where = _source_of(("execution", "enabled_modes"), sources)
                problems.append(f"{dotted}: required because mode {mode} is enabled [enabled in {where}]")
    for mode, granularity in settings.execution.granularity.items():
        if granularity not in granularities_of(mode):
            where = _source_of(("execution", "granularity", mode), sources)
            supported = ", ".join(granularities_of(mode))
            problems.append(
                f"execution.granularity.{mode}: {granularity!r} is not possible here; use {supported} [{where}]"
            )
    return problems


def _location_problems(settings: Settings, sources: Mapping[tuple[str, ...], str]) -> list[str]:
    problems = []
    for section in _LOCAL_FOLDERS:
        storage = getattr(settings, section)
        for key, message in storage.problems():
            # A missing conn_id is the fault of the location that needs it: name where that was set.
            cited = "location" if key == "conn_id" and storage.conn_id is None else key
            problems.append(f"{section}.{key}: {message} [{_source_of((section, cited), sources)}]")
    return problems


def _lineage_problems(settings: Settings, sources: Mapping[tuple[str, ...], str]) -> list[str]:
    return [
        f"lineage.{key}: {message} [{_source_of(('lineage', key), sources)}]"
        for key, message in settings.lineage.problems()
    ]


def problem_list(title: str, problems: list[str]) -> str:
    """One error message: the title, how many problems, and one line each."""
    return f"{title} ({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems)


def _raise_problems(problems: list[str]) -> None:
    raise BlueprintConfigError(problem_list("invalid blueprint configuration", problems))


def load_settings(environ: Mapping[str, str] | None = None, repo_root: Path = REPO_ROOT) -> Settings:
    """Build and validate the settings; raise one BlueprintConfigError naming every problem.

    `repo_root` is where config/ and the relative paths live (tests and `make adopt` use copies)."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    config_dir = CONFIG_DIR if repo_root == REPO_ROOT else repo_root / CONFIG_DIR.relative_to(REPO_ROOT)
    for source, layer in _layers(environ, config_dir):
        merged = deep_merge(merged, layer)
        sources.update(dict.fromkeys(leaf_paths(layer), source))
    try:
        settings = Settings.model_validate(_resolve_paths(merged, repo_root, environ))
    except ValidationError as error:
        _raise_problems(_describe(error, sources))
    problems = _unmet_mode_requirements(settings, sources) + _location_problems(settings, sources)
    problems += _lineage_problems(settings, sources)
    if problems:
        _raise_problems(problems)
    return settings


@functools.cache
def settings() -> Settings:
    """The process-wide settings, validated once (DAG files call this at parse time)."""
    return load_settings()
