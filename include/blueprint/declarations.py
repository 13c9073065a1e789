"""dbt projects and the DAGs declared for them: the `projects:` part of the settings.

A team registers each dbt project once (`make adopt` writes config/projects/<name>.yaml) and
declares its DAGs there as data: which nodes (dbt `select` / `exclude`, or a `selector` of the
project's selectors.yml), when (a cron expression, or the assets of models another DAG builds),
in which execution mode, at which task granularity, the policy a DAG overrides, and who is told
when it fails.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from include.blueprint.alert_settings import AlertSettings
from include.blueprint.runtime import Granularity, ModeName
from include.blueprint.runtime import Section as _Section

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# A model another DAG builds: <project>.<model>, or <project>.<package>.<model> for a package's.
ASSET_REFERENCE = r"^[a-z][a-z0-9_]*\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$"
ID_PLACEHOLDERS = {"project", "mode"}
DEFAULT_DAG_ID = "{project}_{mode}"


class AssetSchedule(_Section):
    """Run when every listed model has been rebuilt since the last run (Airflow asset schedule)."""

    assets: list[str] = Field(min_length=1)

    @field_validator("assets")
    @classmethod
    def _references(cls, assets: list[str]) -> list[str]:
        wrong = [asset for asset in assets if not re.match(ASSET_REFERENCE, asset)]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: write each asset as <project>.<model>")
        return assets


class DagDeclaration(_Section):
    """One DAG of a project, or one per enabled mode when `mode` is not set."""

    # A template: {project} is the project's name, {mode} the execution mode.
    id: str = DEFAULT_DAG_ID
    mode: ModeName | None = None
    select: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    selector: str | None = Field(default=None, min_length=1)
    # Not set: dags.schedule. A cron or preset string, null (triggered only), or {assets: [...]}.
    schedule: str | AssetSchedule | None = None
    granularity: Granularity | None = None
    owner: str | None = Field(default=None, min_length=1)
    tags: list[str] | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    retry_delay_seconds: int | None = Field(default=None, gt=0)
    # Two DAGs building the same model race on its relation; say so here when that is intended.
    allow_overlap: bool = False
    # `dbt source freshness` of the sources the selection reads, before anything is built: a
    # source past its error_after stops the run; past warn_after only warns (the project's config).
    source_freshness: bool = False
    # A `dbt docs generate` task after the build; not set: the deployment's docs.after_build.
    docs_after_build: bool | None = None
    # Not set: the deployment's `alerts`; {on_failure: []} turns them off for this DAG.
    alerts: AlertSettings | None = None

    @field_validator("id")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        unknown = sorted(fields - ID_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; use {{project}} and {{mode}} only")
        return template

    @model_validator(mode="after")
    def _one_way_to_select(self) -> DagDeclaration:
        if self.selector and (self.select or self.exclude):
            raise ValueError("use either selector or select/exclude, not both (a selector can hold both)")
        return self

    @property
    def schedule_is_set(self) -> bool:
        return "schedule" in self.model_fields_set

    def dag_id(self, project: str, mode: str) -> str:
        return self.id.format(project=project, mode=mode)

    def policy_overrides(self) -> dict[str, Any]:
        fields = ("owner", "tags", "retries", "retry_delay_seconds")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


class ProjectSettings(_Section):
    """A dbt project of this deployment."""

    project_dir: Path
    profile: str = Field(min_length=1)
    # The schema dbt builds into (POSTGRES_SCHEMA in the container modes).
    target_schema: str = Field(min_length=1, pattern=r"^[a-z_][a-z0-9_]*$")
    # false: registered (manifest, tests) but no DAG in this deployment.
    enabled: bool = True
    # The container modes' dbt runtime image holds one project (ci/build-image.sh DBT_PROJECT=...):
    # a project other than the one in runtime.image names its own image here.
    image: str | None = Field(default=None, min_length=1)
    dags: list[DagDeclaration] = Field(default_factory=lambda: [DagDeclaration()], min_length=1)

    @property
    def manifest_path(self) -> Path:
        return self.project_dir / "target" / "manifest.json"
