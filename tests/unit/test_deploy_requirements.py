"""What the deploy image installs follows the enabled modes: requirements.txt carries the provider
of every mode a deployable overlay enables, and the preflight names any that is missing."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT
from tools.deploy_requirements import deployable_environments, missing_lines, providers_of

REQUIREMENTS = REPO_ROOT / "requirements.txt"


def test_the_prod_overlay_needs_the_azure_provider_for_its_aci_mode() -> None:
    assert providers_of("prod") == {
        "apache-airflow-providers-microsoft-azure": "mode azure_container_instance is enabled"
    }
    assert providers_of("") == {}  # base enables local only, and no lineage


def test_an_overlay_enabling_lineage_needs_the_openlineage_provider() -> None:
    lineage_on = {"BLUEPRINT__LINEAGE__ENABLED": "true", "BLUEPRINT__LINEAGE__URL": "http://marquez:5000"}
    assert providers_of("", lineage_on) == {"apache-airflow-providers-openlineage": "lineage is enabled"}
    assert "apache-airflow-providers-openlineage" not in REQUIREMENTS.read_text()  # no overlay enables it


def test_the_test_only_overlay_is_not_deployed() -> None:
    environments = deployable_environments()
    assert "" in environments
    assert "prod" in environments
    assert "all-modes" not in environments


def test_the_committed_requirements_cover_every_deployable_overlay() -> None:
    missing = {env: missing_lines(env, REQUIREMENTS) for env in deployable_environments()}
    assert {env: lines for env, lines in missing.items() if lines} == {}


def test_a_missing_provider_is_one_line_naming_the_mode_the_overlay_and_the_fix(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nastronomer-cosmos==1.15.1\napache-airflow-providers-postgres==7.1.1\n")
    [line] = missing_lines("prod", requirements)
    assert line.startswith("mode azure_container_instance is enabled (config/prod.yaml) but requirements.txt ")
    assert "installs no apache-airflow-providers-microsoft-azure: run `make lock`" in line
