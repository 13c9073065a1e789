"""The bucket-based deploys (ci/deploy-mwaa.sh, ci/deploy-composer.sh), run for real with the
cloud CLIs replaced by a recording stub (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from tests.unit.conftest import (
    Run,
    calls,
    dry_runs,
    one_error_line,
)
from tests.unit.test_deploy_scripts import PIN

# --- deploy-mwaa.sh and deploy-composer.sh ---------------------------------------------------

MWAA = {"MWAA_ENVIRONMENT": "blueprint", "MWAA_BUCKET": "my-mwaa-bucket", "AWS_REGION": "eu-west-1"}
COMPOSER = {"COMPOSER_ENVIRONMENT": "blueprint", "COMPOSER_LOCATION": "europe-west1", "GCP_PROJECT": "acme-data"}


def test_deploy_mwaa_dry_run_prints_the_sync_and_the_environment_update(run: Run, tmp_path: Path) -> None:
    result = run("deploy-mwaa.sh", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **MWAA)
    assert result.returncode == 0, result.stderr
    commands = dry_runs(result)
    out = tmp_path / "out" / "mwaa"
    assert commands[0] == f"aws s3 sync {out}/dags s3://my-mwaa-bucket/dags --delete --region eu-west-1"
    assert f"aws s3 cp {out}/requirements.txt s3://my-mwaa-bucket/requirements.txt --region eu-west-1" in commands
    assert commands[-1].startswith("aws mwaa update-environment --name blueprint --region eu-west-1")
    assert calls(tmp_path) == []
    assert (out / "startup.sh").read_text().splitlines()[-1] == "export BLUEPRINT_ENV=prod"


def test_deploy_mwaa_dag_only_syncs_the_dags_alone(run: Run) -> None:
    result = run("deploy-mwaa.sh", "--dags", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **MWAA)
    assert result.returncode == 0, result.stderr
    assert [command.split()[:3] for command in dry_runs(result)] == [["aws", "s3", "sync"]]


def test_deploy_mwaa_lists_every_missing_setting(run: Run) -> None:
    result = run("deploy-mwaa.sh", "--dry-run", DBT_RUNTIME_IMAGE=PIN)
    assert result.returncode == 1
    error = one_error_line(result)
    assert all(name in error for name in ("MWAA_ENVIRONMENT", "MWAA_BUCKET", "AWS_REGION"))


def test_the_mwaa_bundle_loads_its_pinned_settings_and_fresh_manifest_from_the_dags_folder(
    run: Run, tmp_path: Path
) -> None:
    """The staged dags/ folder is a self-contained repository root: settings, overlay, manifest."""
    result = run("deploy-mwaa.sh", "--dags", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **MWAA)
    assert result.returncode == 0, result.stderr
    dags = tmp_path / "out" / "mwaa" / "dags"
    assert (dags / ".airflowignore").read_text().split() == ["include/", "dbt/"]
    overlay = yaml.safe_load((dags / "include" / "blueprint" / "config" / "prod.yaml").read_text())
    assert overlay["runtime"]["image"] == PIN
    probe = (
        "from include.blueprint.settings import load_settings, REPO_ROOT\n"
        "from include.blueprint.manifest import require_fresh_manifest\n"
        "s = load_settings({'BLUEPRINT_ENV': 'prod'})\n"
        "p = s.project('jaffle_shop')\n"
        "require_fresh_manifest(p.project_dir, p.manifest_path)\n"
        "print(REPO_ROOT, s.runtime.image, s.execution.virtualenv_requirements.exists())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEPRINT")}
    env["PYTHONPATH"] = str(dags)
    loaded = subprocess.run(
        [str(REPO_ROOT / ".venvs/airflow/bin/python"), "-c", probe], cwd=dags, env=env, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [str(dags), PIN, "True"]


def test_deploy_composer_dry_run_prints_rsync_and_the_environment_updates(run: Run, tmp_path: Path) -> None:
    result = run("deploy-composer.sh", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **COMPOSER)
    assert result.returncode == 0, result.stderr
    commands = dry_runs(result)
    out = tmp_path / "out" / "composer"
    assert commands[0].startswith("gcloud composer environments describe blueprint --location europe-west1")
    assert commands[1].startswith(f"gcloud storage rsync {out}/dags")
    assert commands[2].endswith(f"--update-pypi-packages-from-file {out}/requirements.txt")
    assert commands[3].endswith("--update-env-variables BLUEPRINT_ENV=prod")
    assert calls(tmp_path) == []


def test_deploy_composer_dag_only_with_a_known_prefix_only_syncs(run: Run, tmp_path: Path) -> None:
    result = run(
        "deploy-composer.sh", "--dags", "--dry-run", DBT_RUNTIME_IMAGE=PIN,
        COMPOSER_DAGS_PREFIX="gs://acme-composer/dags", **COMPOSER,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert dry_runs(result) == [
        f"gcloud storage rsync {tmp_path}/out/composer/dags gs://acme-composer/dags --recursive "
        "--delete-unmatched-destination-objects"
    ]


def test_deploy_composer_runs_gcloud_for_real_outside_a_dry_run(run: Run, tmp_path: Path) -> None:
    settings = {"DBT_RUNTIME_IMAGE": PIN, "COMPOSER_DAGS_PREFIX": "gs://acme-composer/dags", **COMPOSER}
    result = run("deploy-composer.sh", "--dags", **settings)
    assert result.returncode == 0, result.stderr
    assert dry_runs(result) == []
    assert calls(tmp_path) == [
        f"gcloud storage rsync {tmp_path}/out/composer/dags gs://acme-composer/dags --recursive "
        "--delete-unmatched-destination-objects"
    ]
