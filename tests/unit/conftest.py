"""Fixtures for the deploy-script tests (test_deploy_scripts.py, test_bucket_deploys.py).

The cloud CLIs (docker, az, astro, aws, gcloud) are replaced by one recording stub on PATH, so
these tests see exactly which commands a deploy runs, and that a dry run runs none of them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

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
    "ASTRO_DBT_MOUNT_ROOT", "MWAA_ENVIRONMENT", "MWAA_BUCKET", "AWS_REGION", "COMPOSER_ENVIRONMENT",
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
