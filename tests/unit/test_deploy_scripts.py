"""The deploy scripts (ci/deploy-*.sh) and the preflight (ci/preflight.sh), run for real.

The cloud CLIs (docker, az, astro, aws, gcloud) are replaced by one recording stub on PATH, so
these tests see exactly which commands a deploy runs, and that a dry run runs none of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE_ID = "sha256:" + "1" * 64
PUSHED = "sha256:" + "2" * 64
OTHER = "sha256:" + "3" * 64
REGISTRY = "myreg.azurecr.io"
REPO = f"{REGISTRY}/dbt-runtime"
# Every setting any deploy script reads: none leaks in from the machine running the tests.
DEPLOY_SETTINGS = (
    "DRY_RUN", "DEPLOY_OUT", "DEPLOY_TARGET", "GIT_COMMIT", "GITHUB_SHA", "GITHUB_OUTPUT", "IMAGE_REGISTRY",
    "IMAGE_REPOSITORY", "REGISTRY_LOGIN", "REGISTRY_USERNAME", "REGISTRY_PASSWORD", "ACR_NAME", "DBT_RUNTIME_IMAGE",
    "PIN_RUNTIME_IMAGE", "DEPLOY_BLUEPRINT_ENV", "DEPLOY_BASE_SHA", "ASTRO_DEPLOYMENT_ID", "ASTRO_API_TOKEN",
    "ASTRO_DBT_MOUNT_PATH", "MWAA_ENVIRONMENT", "MWAA_BUCKET", "AWS_REGION", "COMPOSER_ENVIRONMENT",
    "COMPOSER_LOCATION", "COMPOSER_DAGS_PREFIX", "GCP_PROJECT", "PREFLIGHT_TESTS", "RUNNER_TEMP",
)  # fmt: skip

# One stub for every cloud CLI: it appends its command line to $FAKE_LOG and answers the few
# questions the scripts ask (image IDs and digests) from FAKE_* variables.
STUB = r"""#!/usr/bin/env bash
name=$(basename "$0")
{ printf '%s' "$name"; printf ' %s' "$@"; printf '\n'; } >>"$FAKE_LOG"
case "$name $1 $2" in
  "docker image inspect")
    case "$*" in
      *RepoDigests*) [ -z "${FAKE_REPO_DIGEST:-}" ] || echo "$FAKE_REPO_DIGEST" ;;
      *) [ -n "${FAKE_IMAGE_ID:-}" ] || { echo "Error: No such image" >&2; exit 1; }; echo "$FAKE_IMAGE_ID" ;;
    esac ;;
  "docker login "*) echo "stdin: $(cat)" >>"$FAKE_LOG" ;;
  "docker buildx imagetools" | "az acr repository")
    [ -n "${FAKE_REGISTRY_DIGEST:-}" ] || { echo "not found" >&2; exit 1; }; echo "$FAKE_REGISTRY_DIGEST" ;;
  "astro dbt deploy")
    while [ $# -gt 0 ]; do
      [ "$1" = --project-path ] && (cd "$2" && find . -type f | sort) >"$FAKE_LOG.bundle"
      shift
    done ;;
esac
exit 0
"""


@pytest.fixture
def cloud(tmp_path: Path) -> Path:
    """A bin directory whose docker, az, astro, aws and gcloud record their calls to calls.log."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name in ("docker", "az", "astro", "aws", "gcloud"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    return bin_dir


Run = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run(tmp_path: Path, cloud: Path, jaffle_project: Path) -> Run:
    """`run("deploy-astro.sh", "--dags", KEY=value, ...)`: the script with only the given settings."""
    passing = tmp_path / "test_passes.py"
    passing.write_text("def test_passes():\n    assert True\n")

    def run_script(script: str, *args: str, **settings: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in DEPLOY_SETTINGS and not k.startswith("BLUEPRINT")}
        env.update(
            PATH=f"{cloud}{os.pathsep}{env['PATH']}",
            FAKE_LOG=str(tmp_path / "calls.log"),
            DEPLOY_OUT=str(tmp_path / "out"),
            RUNNER_TEMP=str(tmp_path),
            GIT_COMMIT=COMMIT,
            FAKE_IMAGE_ID=IMAGE_ID,
            PREFLIGHT_TESTS=str(passing),
        )
        env.update(settings)
        return subprocess.run(
            ["bash", f"ci/{script}", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    return run_script


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def cloud_calls(tmp_path: Path) -> list[str]:
    """The calls that reached a cloud or a registry (local docker inspect/tag are not such calls)."""
    return [c for c in calls(tmp_path) if not c.startswith(("docker image inspect", "docker tag"))]


def dry_runs(result: subprocess.CompletedProcess) -> list[str]:
    return [line.removeprefix("dry-run: would run: ") for line in result.stdout.splitlines() if "would run" in line]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


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
    result = run("deploy-astro.sh", "--image", "--dry-run", **ASTRO)
    assert result.returncode == 0, result.stderr
    commands = dry_runs(result)
    assert f"BLUEPRINT__RUNTIME__IMAGE={PIN}" in commands[0]
    assert commands[-1].startswith("astro deploy cldeploy123 --description")
    assert "--dags" not in commands[-1]


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
def test_deploy_astro_auto_picks_the_deploy_kind(run: Run, base: str | None, expected: str) -> None:
    head = _head()
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
    stale = {"BLUEPRINT__DBT__PROJECT_DIR": str(project), "DBT_RUNTIME_IMAGE": PIN, **ASTRO}
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
        "preflight.sh", "--target", "mwaa", PREFLIGHT_TESTS=str(failing), BLUEPRINT__DBT__PROJECT_DIR=str(project),
        IMAGE_REGISTRY=REGISTRY, MWAA_BUCKET="bucket",
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


def test_preflight_rejects_an_unknown_target(run: Run) -> None:
    result = run("preflight.sh", "--target", "heroku", **PREFLIGHT)
    assert result.returncode == 1
    assert "--target must be astro, mwaa or composer" in one_error_line(result)


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
        "require_fresh_manifest(s.dbt.project_dir, s.dbt.manifest_path)\n"
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
