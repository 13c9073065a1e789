"""Settings: layered loading, environment overrides, and one error that names every problem."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from include.blueprint import settings as settings_module
from include.blueprint.merge import deep_merge, leaf_paths
from include.blueprint.settings import REPO_ROOT, BlueprintConfigError, load_settings


def _config_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of config/ (base, overlays, registered projects) that the settings then read."""
    copy = tmp_path / "config"
    shutil.copytree(settings_module.CONFIG_DIR, copy)
    monkeypatch.setattr(settings_module, "CONFIG_DIR", copy)
    return copy


def test_base_configuration_loads_with_repo_relative_paths() -> None:
    loaded = load_settings({})
    jaffle_shop = loaded.project("jaffle_shop")
    assert jaffle_shop.project_dir == REPO_ROOT / "dbt" / "jaffle_shop"
    assert jaffle_shop.manifest_path == REPO_ROOT / "dbt" / "jaffle_shop" / "target" / "manifest.json"
    assert loaded.dbt.executable == REPO_ROOT / ".venvs" / "dbt" / "bin" / "dbt"
    assert loaded.warehouse.conn_id == "jaffle_shop_postgres"
    assert loaded.dags.start_date == dt.date(2026, 1, 1)


def test_environment_overrides_are_typed_and_absolute_paths_kept() -> None:
    loaded = load_settings(
        {
            "BLUEPRINT__DBT__EXECUTABLE": "/usr/local/airflow/dbt_venv/bin/dbt",
            "BLUEPRINT__DAGS__RETRIES": "3",
            "BLUEPRINT__DAGS__TAGS": "[dbt, nightly]",
            "BLUEPRINT__DAGS__SCHEDULE": "null",
        }
    )
    assert loaded.dbt.executable == Path("/usr/local/airflow/dbt_venv/bin/dbt")
    assert loaded.dags.retries == 3
    assert loaded.dags.tags == ["dbt", "nightly"]
    assert loaded.dags.schedule is None
    assert loaded.dbt.target == "dev"  # untouched siblings survive the override


def test_every_problem_is_reported_at_once_with_its_source() -> None:
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(
            {
                "BLUEPRINT__DAGS__RETRIES": "-1",
                "BLUEPRINT__DAGS__START_DATE": "someday",
                "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": "Not A Schema",
                "BLUEPRINT__DBT__PROFLE": "typo",
            }
        )
    message = str(caught.value)
    assert message.startswith("invalid blueprint configuration (4 problem(s))")
    assert "dags.retries: Input should be greater than or equal to 0 (got -1) [BLUEPRINT__DAGS__RETRIES]" in message
    assert "dags.start_date: " in message
    assert "[BLUEPRINT__DAGS__START_DATE]" in message
    assert "projects.jaffle_shop.target_schema: " in message
    assert "[BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA]" in message
    assert "dbt.profle: unknown setting" in message
    assert "[BLUEPRINT__DBT__PROFLE]" in message


def test_a_missing_setting_names_the_file_to_add_it_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _config_copy(tmp_path, monkeypatch) / "base.yaml"
    base.write_text(base.read_text().replace("  owner: data-platform\n", ""))
    with pytest.raises(BlueprintConfigError, match=r"dags\.owner: missing \[not set anywhere; add it to "):
        load_settings({})


def test_an_environment_overlay_wins_over_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = _config_copy(tmp_path, monkeypatch) / "prod.yaml"
    overlay.write_text("dags:\n  retries: 4\n  owner: analytics\n")
    loaded = load_settings({"BLUEPRINT_ENV": "prod"})
    assert (loaded.dags.retries, loaded.dags.owner, loaded.dags.retry_delay_seconds) == (4, "analytics", 60)
    overlay.write_text("dags:\n  retries: 99\n")
    with pytest.raises(BlueprintConfigError, match=r"retries: Input should be less than or equal to 10 .*prod\.yaml"):
        load_settings({"BLUEPRINT_ENV": "prod"})


def test_an_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(BlueprintConfigError, match=r"BLUEPRINT_ENV=.staging. has no file .*known environments: all-"):
        load_settings({"BLUEPRINT_ENV": "staging"})


def test_broken_yaml_is_reported_with_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (_config_copy(tmp_path, monkeypatch) / "base.yaml").write_text("dbt: [unclosed\n")
    with pytest.raises(BlueprintConfigError, match=r"base\.yaml: not valid YAML"):
        load_settings({})


def test_deep_merge_merges_nested_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "tags": ["x", "y"], "keep": True}
    overlay = {"a": {"c": {"d": 20}}, "tags": ["z"], "new": None}
    merged = deep_merge(base, overlay)
    assert merged == {"a": {"b": 1, "c": {"d": 20, "e": 3}}, "tags": ["z"], "keep": True, "new": None}
    assert base["a"]["c"]["d"] == 2  # inputs are not modified


def test_deep_merge_lets_a_scalar_replace_a_mapping_and_back() -> None:
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_leaf_paths_names_every_value() -> None:
    assert leaf_paths({"a": {"b": 1, "c": {"d": [2]}}, "e": {}}) == {("a", "b"): 1, ("a", "c", "d"): [2], ("e",): {}}
