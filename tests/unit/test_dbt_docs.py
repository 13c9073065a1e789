"""The `[cosmos] dbt_docs_projects` value for the registered projects, and `make manifest`
regenerating the docs when they are missing although the manifest is fresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.blueprint.dbt_docs import docs_projects, docs_projects_json
from include.blueprint.declarations import ProjectSettings
from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT
from tools import manifest as manifest_tool


def test_every_enabled_project_is_served_from_its_target_folder() -> None:
    projects = docs_projects(load_settings({}))
    assert projects == {
        "jaffle_shop": {
            "dir": str(REPO_ROOT / "dbt" / "jaffle_shop" / "target"),
            "index": "index.html",
            "name": "dbt Docs (jaffle_shop)",
        }
    }


def test_a_hidden_project_gets_no_menu_entry() -> None:
    assert docs_projects(load_settings({"BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED": "false"})) == {}


def test_object_storage_gets_a_folder_per_project_and_the_connection() -> None:
    value = json.loads(docs_projects_json(load_settings({}), "s3://docs-bucket/dbt/", "aws_docs"))
    assert value["jaffle_shop"]["dir"] == "s3://docs-bucket/dbt/jaffle_shop"
    assert value["jaffle_shop"]["conn_id"] == "aws_docs"


@pytest.fixture
def parsed_project(tmp_path: Path) -> ProjectSettings:
    """A project whose manifest is newer than its sources: fresh, as far as the manifest goes."""
    (tmp_path / "dbt_project.yml").write_text("name: tiny\n")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text("{}")
    return ProjectSettings(project_dir=tmp_path, profile="tiny", target_schema="tiny")


def test_missing_docs_are_generated_although_the_manifest_is_fresh(
    parsed_project: ProjectSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated: list[Path] = []
    monkeypatch.setattr(manifest_tool, "parse_project", lambda project_dir, *_: generated.append(project_dir))
    manifest_tool.refresh(load_settings({}), parsed_project)
    assert generated == [parsed_project.project_dir]

    for name in ("index.html", "catalog.json"):
        (parsed_project.project_dir / "target" / name).write_text("")
    assert manifest_tool.refresh(load_settings({}), parsed_project) is None
    assert generated == [parsed_project.project_dir]
