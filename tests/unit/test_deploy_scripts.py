"""The deploy scripts (ci/deploy-image.sh, ci/deploy-astro.sh) and the preflight, run for real
with the cloud CLIs replaced by a recording stub (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.unit.conftest import (
    COMMIT,
    IMAGE_ID,
    OTHER,
    PUSHED,
    REGISTRY,
    REPO,
    Run,
    calls,
    cloud_calls,
    dry_runs,
    one_error_line,
)

# --- deploy-image.sh -------------------------------------------------------------------------


def test_deploy_image_lists_every_missing_setting_in_one_line(run: Run, tmp_path: Path) -> None:
    result = run("deploy-image.sh", "--dry-run", REGISTRY_LOGIN="docker")
    assert result.returncode == 1
    error = one_error_line(result)
    for name in ("IMAGE_REGISTRY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
        assert name in error
    assert "missing deploy settings (3)" in error
    assert calls(tmp_path) == []


def test_deploy_image_rejects_an_unknown_registry_login(run: Run) -> None:
    result = run("deploy-image.sh", "--dry-run", IMAGE_REGISTRY=REGISTRY, REGISTRY_LOGIN="harbor")
    assert result.returncode == 1
    assert "REGISTRY_LOGIN must be one of acr, docker, ecr, gcloud, none" in one_error_line(result)


def test_deploy_image_dry_run_prints_login_and_push_and_pushes_nothing(run: Run, tmp_path: Path) -> None:
    result = run("deploy-image.sh", "--local-image", "local/dbt:1", DRY_RUN="1", IMAGE_REGISTRY=REGISTRY)
    assert result.returncode == 0, result.stderr
    assert dry_runs(result) == ["az acr login --name myreg", f"docker push {REPO}:{COMMIT}"]
    assert cloud_calls(tmp_path) == []
    assert f"docker tag local/dbt:1 {REPO}:{COMMIT}" in calls(tmp_path)
    # The local image ID stands in for the digest, so the later dry runs get a well-formed pin.
    assert (tmp_path / "out" / "image.txt").read_text().strip() == f"{REPO}@{IMAGE_ID}"
    assert result.stdout.splitlines()[-1] == f"{REPO}@{IMAGE_ID}"


def test_deploy_image_pushes_the_commit_tag_and_reports_the_registry_digest(run: Run, tmp_path: Path) -> None:
    outputs = tmp_path / "github_output"
    result = run(
        "deploy-image.sh", "--local-image", "local/dbt:1", IMAGE_REGISTRY=REGISTRY,
        FAKE_REPO_DIGEST=f"{REPO}@{PUSHED}", GITHUB_OUTPUT=str(outputs),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert cloud_calls(tmp_path) == ["az acr login --name myreg", f"docker push {REPO}:{COMMIT}"]
    assert result.stdout.splitlines()[-1] == f"{REPO}@{PUSHED}"
    assert (tmp_path / "out" / "image.txt").read_text().strip() == f"{REPO}@{PUSHED}"
    assert outputs.read_text().splitlines() == [f"image={REPO}@{PUSHED}", f"digest={PUSHED}", f"tag={REPO}:{COMMIT}"]


def test_deploy_image_docker_login_reads_the_password_from_stdin(run: Run, tmp_path: Path) -> None:
    result = run(
        "deploy-image.sh", "--local-image", "local/dbt:1", IMAGE_REGISTRY="registry.example.com",
        REGISTRY_LOGIN="docker", REGISTRY_USERNAME="ci", REGISTRY_PASSWORD="s3cret-value",
        FAKE_REPO_DIGEST=f"registry.example.com/dbt-runtime@{PUSHED}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    logged = calls(tmp_path)
    assert "docker login registry.example.com --username ci --password-stdin" in logged
    assert "stdin: s3cret-value" in logged
    assert not any("s3cret-value" in line for line in logged if line.startswith("docker"))
    assert "s3cret-value" not in result.stdout + result.stderr


def test_deploy_image_fails_when_the_local_image_is_missing(run: Run) -> None:
    result = run("deploy-image.sh", "--local-image", "local/dbt:1", IMAGE_REGISTRY=REGISTRY, FAKE_IMAGE_ID="")
    assert result.returncode == 1
    assert "no local image local/dbt:1" in one_error_line(result)


# --- deploy-astro.sh -------------------------------------------------------------------------

ASTRO = {"ASTRO_DEPLOYMENT_ID": "cldeploy123", "ASTRO_API_TOKEN": "token"}
PIN = f"{REPO}@{PUSHED}"
TESTED_DEPLOY_IMAGE = "airflow-dbt-blueprint/astro:abc1234"
VARIABLE_UPDATE = "astro deployment variable update --deployment-id cldeploy123 BLUEPRINT__RUNTIME__IMAGE"


def test_deploy_astro_lists_both_missing_astro_settings(run: Run, tmp_path: Path) -> None:
    result = run("deploy-astro.sh", "--dry-run")
    assert result.returncode == 1
    error = one_error_line(result)
    assert "ASTRO_DEPLOYMENT_ID" in error
    assert "ASTRO_API_TOKEN (secret" in error
    assert calls(tmp_path) == []


def test_deploy_astro_dag_only_dry_run_prints_the_pin_the_dbt_bundle_and_the_deploy(run: Run, tmp_path: Path) -> None:
    result = run("deploy-astro.sh", "--dags", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **ASTRO)
    assert result.returncode == 0, result.stderr
    commands = dry_runs(result)
    assert commands[0] == f"{VARIABLE_UPDATE}={PIN}"
    assert commands[1].startswith(f"astro dbt deploy cldeploy123 --project-path {tmp_path}/astro-dbt-bundle.")
    assert "--mount-path /usr/local/airflow/dbt/jaffle_shop" in commands[1]
    assert commands[2].startswith("astro deploy cldeploy123 --dags --description")
    assert len(commands) == 3
    assert calls(tmp_path) == []


def test_deploy_astro_image_deploy_uses_the_digest_written_by_deploy_image(run: Run, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "image.txt").write_text(PIN + "\n")
    (tmp_path / "out" / "astro-image.txt").write_text(f"{TESTED_DEPLOY_IMAGE} {IMAGE_ID}\n")
    result = run("deploy-astro.sh", "--image", "--dry-run", **ASTRO)
    assert result.returncode == 0, result.stderr
    commands = dry_runs(result)
    assert f"BLUEPRINT__RUNTIME__IMAGE={PIN}" in commands[0]
    assert commands[-1].startswith(f"astro deploy cldeploy123 --image-name {TESTED_DEPLOY_IMAGE} --description")
    assert "--dags" not in commands[-1]


def test_deploy_astro_image_deploy_refuses_an_image_changed_since_its_tests(run: Run, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "astro-image.txt").write_text(f"{TESTED_DEPLOY_IMAGE} sha256:{'2' * 64}\n")
    result = run("deploy-astro.sh", "--image", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **ASTRO)
    assert result.returncode == 1
    assert f"{TESTED_DEPLOY_IMAGE} is {IMAGE_ID}, not the image tested" in one_error_line(result)
    assert cloud_calls(tmp_path) == []


def test_deploy_astro_image_deploy_without_a_tested_image_says_how_to_get_one(run: Run, tmp_path: Path) -> None:
    result = run("deploy-astro.sh", "--image", "--dry-run", DBT_RUNTIME_IMAGE=PIN, **ASTRO)
    assert result.returncode == 1
    error = one_error_line(result)
    assert "bash ci/pipeline.sh astro-image stack" in error
    assert "ASTRO_BUILD_ON_DEPLOY=true" in error
    built_by_astro = run("deploy-astro.sh", "--image", "--dry-run", DBT_RUNTIME_IMAGE=PIN, ASTRO_BUILD_ON_DEPLOY="true",
                         **ASTRO)  # fmt: skip
    assert built_by_astro.returncode == 0, built_by_astro.stderr
    assert dry_runs(built_by_astro)[-1].startswith("astro deploy cldeploy123 --description")


def test_deploy_astro_runs_the_astro_cli_in_order_with_a_bundle_carrying_the_manifest(run: Run, tmp_path: Path) -> None:
    result = run("deploy-astro.sh", "--dags", DBT_RUNTIME_IMAGE=PIN, **ASTRO)
    assert result.returncode == 0, result.stderr
    logged = [line.split(" --description")[0] for line in calls(tmp_path)]
    assert logged[0] == f"{VARIABLE_UPDATE}={PIN}"
    assert logged[1].startswith("astro dbt deploy cldeploy123 --project-path")
    assert logged[2] == "astro deploy cldeploy123 --dags"
    bundle = (tmp_path / "calls.log.bundle").read_text().splitlines()
    assert "./target/manifest.json" in bundle
    assert "./dbt_project.yml" in bundle
    assert "./models/marts/customers.sql" in bundle
    assert not any(path.startswith(("./logs/", "./target/partial_parse")) for path in bundle)
    # The staging folder is outside the Astro project (astro dbt deploy refuses one inside it)
    # and is removed afterwards.
    assert not list(tmp_path.glob("astro-dbt-bundle.*"))


def test_deploy_astro_refuses_an_image_that_is_not_pinned_by_digest(run: Run, tmp_path: Path) -> None:
    result = run("deploy-astro.sh", "--dags", "--dry-run", DBT_RUNTIME_IMAGE=f"{REPO}:latest", **ASTRO)
    assert result.returncode == 1
    assert "must be referenced by digest" in one_error_line(result)
    assert calls(tmp_path) == []


def test_deploy_astro_without_an_image_names_the_three_ways_out(run: Run) -> None:
    result = run("deploy-astro.sh", "--dags", "--dry-run", **ASTRO)
    assert result.returncode == 1
    error = one_error_line(result)
    assert "DBT_RUNTIME_IMAGE" in error
    assert "ci/deploy-image.sh" in error
    assert "PIN_RUNTIME_IMAGE=false" in error


def test_deploy_astro_without_a_pin_deploys_no_variable(run: Run) -> None:
    result = run("deploy-astro.sh", "--dags", "--dry-run", PIN_RUNTIME_IMAGE="false", **ASTRO)
    assert result.returncode == 0, result.stderr
    assert not any("variable update" in command for command in dry_runs(result))


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize(
    ("base", "expected"),
    [(None, "image deploy"), ("0" * 40, "image deploy"), ("HEAD", "DAG-only deploy")],
    ids=["no-base", "unknown-base", "nothing-outside-dags"],
)
def test_deploy_astro_auto_picks_the_deploy_kind(run: Run, tmp_path: Path, base: str | None, expected: str) -> None:
    head = _head()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "astro-image.txt").write_text(f"{TESTED_DEPLOY_IMAGE} {IMAGE_ID}\n")
    settings = {**ASTRO, "DBT_RUNTIME_IMAGE": PIN, "GIT_COMMIT": head}
    if base is not None:
        settings["DEPLOY_BASE_SHA"] = head if base == "HEAD" else base
    result = run("deploy-astro.sh", "--auto", "--dry-run", **settings)
    assert result.returncode == 0, result.stderr
    assert expected in result.stderr
    last = dry_runs(result)[-1]
    assert ("--dags" in last) == (expected == "DAG-only deploy")


def _stale_project(tmp_path: Path, jaffle_project: Path) -> Path:
    project = tmp_path / "jaffle_shop"
    shutil.copytree(jaffle_project, project, ignore=shutil.ignore_patterns("logs", "partial_parse.msgpack"))
    past = time.time() - 3600
    os.utime(project / "target" / "manifest.json", (past, past))
    orders = project / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text() + "\n-- edited after the last dbt parse\n")
    return project


def test_deploy_astro_refuses_a_stale_manifest(run: Run, tmp_path: Path, jaffle_project: Path) -> None:
    project = _stale_project(tmp_path, jaffle_project)
    stale = {"BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR": str(project), "DBT_RUNTIME_IMAGE": PIN, **ASTRO}
    result = run("deploy-astro.sh", "--dags", "--dry-run", **stale)
    assert result.returncode == 1
    assert "is older than models/marts/orders.sql" in one_error_line(result)
    assert dry_runs(result) == []


# --- preflight.sh ----------------------------------------------------------------------------

PREFLIGHT = {**ASTRO, "IMAGE_REGISTRY": REGISTRY}
ACR_LOOKUP = f"az acr repository show --name myreg --image dbt-runtime:{COMMIT} --query digest --output tsv"


def _failed(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("preflight: FAILED")]


def test_preflight_passes_when_everything_is_in_place(run: Run, tmp_path: Path) -> None:
    result = run("preflight.sh", DBT_RUNTIME_IMAGE=PIN, FAKE_REGISTRY_DIGEST=PUSHED, **PREFLIGHT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _failed(result) == []
    assert f"runtime image {PIN} is in the registry (tag {COMMIT})" in result.stdout
    assert calls(tmp_path) == [ACR_LOOKUP]


def test_preflight_reports_every_failure_at_once(run: Run, tmp_path: Path, jaffle_project: Path) -> None:
    failing = tmp_path / "test_integrity.py"
    failing.write_text("def test_dag_imports():\n    assert False, 'import error in dags/broken.py'\n")
    project = _stale_project(tmp_path, jaffle_project)
    result = run(
        "preflight.sh", "--target", "mwaa", PREFLIGHT_TESTS=str(failing),
        BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR=str(project), IMAGE_REGISTRY=REGISTRY, MWAA_BUCKET="bucket",
    )  # fmt: skip
    assert result.returncode == 1
    failed = _failed(result)
    assert len(failed) == 4, result.stdout
    assert "missing deploy settings (2): MWAA_ENVIRONMENT (MWAA environment name), AWS_REGION (region)" in failed[0]
    assert "is older than models/marts/orders.sql" in failed[1]
    assert "ci/manifest.sh" in failed[1]
    assert "DAG integrity tests failed (1 failed" in failed[2]
    assert "runtime image not checked" in failed[3]
    assert "import error in dags/broken.py" in result.stdout
    assert "4 check(s) failed; nothing was deployed" in result.stderr


def test_preflight_fails_when_the_image_for_this_commit_is_not_in_the_registry(run: Run) -> None:
    result = run("preflight.sh", **PREFLIGHT)
    assert result.returncode == 1
    (failed,) = _failed(result)
    assert f"the dbt runtime image for commit {COMMIT} is not in the registry ({REPO}:{COMMIT})" in failed
    assert "run ci/deploy-image.sh" in failed


def test_preflight_fails_when_the_pinned_image_is_not_the_one_pushed_for_this_commit(run: Run) -> None:
    result = run("preflight.sh", DBT_RUNTIME_IMAGE=f"{REPO}@{OTHER}", FAKE_REGISTRY_DIGEST=PUSHED, **PREFLIGHT)
    assert result.returncode == 1
    (failed,) = _failed(result)
    assert f"DBT_RUNTIME_IMAGE is {REPO}@{OTHER}, but the image pushed for commit {COMMIT} is {PIN}" in failed


def test_preflight_checks_other_registries_with_buildx(run: Run, tmp_path: Path) -> None:
    settings = {**PREFLIGHT, "IMAGE_REGISTRY": "ghcr.io/acme", "REGISTRY_LOGIN": "none"}
    result = run("preflight.sh", FAKE_REGISTRY_DIGEST=PUSHED, **settings)
    assert result.returncode == 0, result.stdout
    assert calls(tmp_path) == [
        f"docker buildx imagetools inspect ghcr.io/acme/dbt-runtime:{COMMIT} --format {{{{.Manifest.Digest}}}}"
    ]


def test_preflight_dry_run_asks_no_registry(run: Run, tmp_path: Path) -> None:
    result = run("preflight.sh", "--dry-run", **PREFLIGHT)
    assert result.returncode == 0, result.stdout
    assert dry_runs(result) == [ACR_LOOKUP]
    assert calls(tmp_path) == []
    assert "all checks passed for astro (dry run)" in result.stdout


def test_preflight_loads_the_deployed_settings(run: Run) -> None:
    result = run("preflight.sh", "--dry-run", DEPLOY_BLUEPRINT_ENV="staging", **PREFLIGHT)
    assert result.returncode == 1
    (failed,) = _failed(result)
    assert "the deployed settings are invalid" in failed
    assert "BLUEPRINT_ENV='staging' has no file" in failed


def test_preflight_names_each_enabled_mode_whose_provider_the_image_lacks(run: Run) -> None:
    # all-modes is a test-only overlay: requirements.txt installs no provider for most of its modes
    result = run("preflight.sh", "--dry-run", DEPLOY_BLUEPRINT_ENV="all-modes", **PREFLIGHT)
    assert result.returncode == 1
    failed = _failed(result)
    assert any(
        "mode docker is enabled (config/all-modes.yaml) but requirements.txt installs no "
        "apache-airflow-providers-docker: run `make lock`" in line
        for line in failed
    ), failed
    assert not any("microsoft-azure" in line for line in failed)  # prod's ACI provider is there


def test_preflight_rejects_an_unknown_target(run: Run) -> None:
    result = run("preflight.sh", "--target", "heroku", **PREFLIGHT)
    assert result.returncode == 1
    assert "--target must be astro, mwaa or composer" in one_error_line(result)
