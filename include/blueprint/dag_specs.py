"""From DAG declarations to DAG specs: one spec per DAG this deployment shows.

A declaration without `mode` becomes one DAG per enabled mode (the modes that can build its
granularity); one with a `mode` that is not enabled shows no DAG. Every problem is collected
and reported at once, one line each, naming the declaration it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from include.blueprint.alert_settings import AlertSettings
from include.blueprint.declarations import AssetSchedule, DagDeclaration, ProjectSettings
from include.blueprint.runtime import granularities_of
from include.blueprint.settings import BlueprintConfigError, DagPolicy, Settings, problem_list

DAG_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


@dataclass(frozen=True)
class DagSpec:
    """Everything one DAG is built from: its project, declaration, mode and the settings."""

    dag_id: str
    mode: str
    project_name: str
    declaration: DagDeclaration
    granularity: str
    settings: Settings
    where: str  # e.g. projects.jaffle_shop.dags[0], for messages

    @property
    def project(self) -> ProjectSettings:
        return self.settings.projects[self.project_name]

    @property
    def project_dir(self) -> Path:
        return self.project.project_dir

    @property
    def image(self) -> str | None:
        """The dbt runtime image holding this project (container modes)."""
        return self.project.image or self.settings.runtime.image

    @property
    def policy(self) -> DagPolicy:
        overrides = self.declaration.policy_overrides()
        return self.settings.dags.model_copy(update=overrides) if overrides else self.settings.dags

    @property
    def schedule(self) -> str | AssetSchedule | None:
        return self.declaration.schedule if self.declaration.schedule_is_set else self.settings.dags.schedule

    @property
    def alerts(self) -> AlertSettings:
        return self.declaration.alerts if self.declaration.alerts is not None else self.settings.alerts

    @property
    def docs_after_build(self) -> bool:
        chosen = self.declaration.docs_after_build
        return self.settings.docs.after_build if chosen is None else chosen

    @property
    def selects_everything(self) -> bool:
        declaration = self.declaration
        return not (declaration.select or declaration.exclude or declaration.selector)


def default_spec(
    settings: Settings, dag_id: str, mode: str, granularity: str | None = None, project: str | None = None
) -> DagSpec:
    """A spec building every node of `project` (default: the first enabled one): for tests and benchmarks."""
    name = project or next(key for key, value in settings.projects.items() if value is settings.project())
    settings.project(name)  # an unknown name is refused with the registered ones
    declaration = DagDeclaration(id=dag_id, mode=mode, granularity=granularity)  # type: ignore[arg-type]
    chosen = granularity or settings.execution.granularity_of(mode)
    return DagSpec(dag_id, mode, name, declaration, chosen, settings, f"projects.{name}")


def _modes(settings: Settings, declaration: DagDeclaration) -> list[str]:
    if declaration.mode is not None:
        return [declaration.mode] if settings.mode_enabled(declaration.mode) else []
    if declaration.granularity is None:
        return list(settings.execution.enabled_modes)
    # Only the modes that can build the asked granularity (e.g. no single task for the watcher).
    return [mode for mode in settings.execution.enabled_modes if declaration.granularity in granularities_of(mode)]


def _specs_of(settings: Settings, name: str, index: int, declaration: DagDeclaration) -> tuple[list[DagSpec], list]:
    where = f"projects.{name}.dags[{index}]"
    modes = _modes(settings, declaration)
    if len(modes) > 1 and "{mode}" not in declaration.id:
        return [], [f"{where}: id {declaration.id!r} names one DAG for {len(modes)} modes; add {{mode}} or set mode"]
    specs, problems = [], []
    for mode in modes:
        granularity = declaration.granularity or settings.execution.granularity_of(mode)
        if granularity not in granularities_of(mode):
            supported = ", ".join(granularities_of(mode))
            problems.append(f"{where}: granularity {granularity!r} is not possible in mode {mode}; use {supported}")
            continue
        dag_id = declaration.dag_id(name, mode)
        if not DAG_ID_PATTERN.match(dag_id):
            problems.append(f"{where}: DAG id {dag_id!r} may hold only letters, digits, '_', '.' and '-'")
            continue
        specs.append(DagSpec(dag_id, mode, name, declaration, granularity, settings, where))
    return specs, problems


def dag_specs(settings: Settings) -> list[DagSpec]:
    """Every DAG of the enabled projects, in declaration order; raises on any problem."""
    specs: list[DagSpec] = []
    problems: list[str] = []
    for name, project in settings.projects.items():
        if not project.enabled:
            continue
        found_any = False
        for index, declaration in enumerate(project.dags):
            found, wrong = _specs_of(settings, name, index, declaration)
            specs.extend(found)
            problems.extend(wrong)
            found_any = found_any or bool(found or wrong)
        if not found_any:
            modes = ", ".join(settings.execution.enabled_modes)
            problems.append(
                f"projects.{name}: no DAG of this enabled project runs in the enabled modes ({modes}); "
                "leave `mode` out of a declaration, or set enabled: false"
            )
    first_seen: dict[str, DagSpec] = {}
    for spec in specs:
        if spec.dag_id in first_seen:
            problems.append(f"{spec.where}: DAG id {spec.dag_id!r} is also declared by {first_seen[spec.dag_id].where}")
        first_seen.setdefault(spec.dag_id, spec)
    if problems:
        raise_problems(problems)
    return specs


def raise_problems(problems: list[str]) -> None:
    raise BlueprintConfigError(problem_list("invalid DAG declarations", problems))
