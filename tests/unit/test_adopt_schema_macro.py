"""`make adopt` gives a project the blueprint's postgres__create_schema (tools/adopt_files/), in
its first macro path, unless the project defines its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_adopt import write_files
from tools.adopt import SCHEMA_MACRO, add_schema_macro

OWN_SCHEMA_MACRO = "{% macro postgres__create_schema(relation) %}{{ return(none) }}{% endmacro %}\n"
PROJECT_YML = "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\nmacro-paths: [{paths}]\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"dbt_project.yml": PROJECT_YML.format(paths="dbt_macros, more")}, "dbt_macros/blueprint_create_schema.sql"),
        ({"dbt_project.yml": PROJECT_YML.format(paths="a, b"), "b/deep/schema.sql": OWN_SCHEMA_MACRO}, None),
    ],
    ids=["first-macro-path", "the-teams-own-override"],
)
def test_the_schema_macro_goes_to_the_first_macro_path_unless_the_project_has_its_own(
    tmp_path: Path, files: dict[str, str], expected: str | None
) -> None:
    project = tmp_path / "shop"
    write_files(project, files)
    added = add_schema_macro(project)
    assert (added and added.relative_to(project).as_posix()) == expected
    assert sorted(path.name for path in project.rglob("*.sql")) == sorted(
        [Path(name).name for name in files if name.endswith(".sql")] + ([SCHEMA_MACRO.name] if expected else [])
    )
