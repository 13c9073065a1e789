"""The linters' configuration: each linter that `make lint`, pre-commit and CI run is really
configured (it catches a planted finding through ci/lint.sh), and the CI workflows, the pipeline
and the pre-commit hooks stay in step with one another."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def lint(name: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "ci/lint.sh", name, *map(str, files)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def bash_array(script: str, name: str) -> list[str]:
    text = (REPO_ROOT / script).read_text()
    match = re.search(rf"^{name}=\(([^)]*)\)", text, re.MULTILINE)
    assert match, f"no {name}=(...) in {script}"
    return match.group(1).split()


LINTERS = bash_array("ci/lint.sh", "ALL")
STAGES = bash_array("ci/pipeline.sh", "STAGES")

# A file each linter must reject, and the rule it must name: proof that ci/lint.sh runs the
# linter with this repository's settings (e.g. sqlfluff's lower-case keywords, hadolint's trusted
# registries), not merely that the tool exists.
PLANTED = {
    "ruff": ("bad.py", "import os, sys\n", "E401"),
    "ruff-format": ("bad.py", "x = {  'a':1 }\n", "would be reformatted"),
    "sqlfluff": ("bad.sql", "SELECT id FROM {{ ref('stg_orders') }}\n", "CP01"),
    "yamllint": ("bad.yaml", "enabled: yes\nkey: value  \n", "truthy"),
    "hadolint": ("Dockerfile", "FROM quay.io/example/base:1.0\nRUN echo ok\n", "DL3026"),
    "shellcheck": ("bad.sh", "#!/usr/bin/env bash\nunused=1\ncd /tmp\n", "SC2034"),
    "actionlint": (
        ".github/workflows/bad.yml",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo hi\n        wiht: x\n",
        "unexpected key",
    ),
    "zizmor": (
        ".github/workflows/bad.yml",
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n"
        "    steps:\n      - uses: actions/checkout@v7\n",
        "unpinned-uses",
    ),
    "check-jsonschema": (
        ".github/workflows/bad.yml",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo hi\n",
        "timeout-minutes",
    ),
    "pre-commit-config": (".pre-commit-config.yaml", "repos:\n  - repo: local\n    hooks: [{id: x}]\n", "name"),
}


def test_every_linter_has_a_planted_finding() -> None:
    assert sorted(PLANTED) == sorted(LINTERS)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_linter_rejects_its_planted_finding(name: str, tmp_path: Path) -> None:
    relative, content, rule = PLANTED[name]
    planted = tmp_path / relative
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(content)
    result = lint(name, planted)
    assert result.returncode != 0, f"{name} accepted:\n{content}\n{result.stdout}{result.stderr}"
    assert rule in result.stdout + result.stderr


def test_sqlfluff_renders_dbt_builtins_without_dbt(tmp_path: Path) -> None:
    model = tmp_path / "model.sql"
    model.write_text(
        "{{ config(materialized='table') }}\n\nselect\n    id,\n    '{{ var(\"region\", \"eu\") }}' as region\n"
        "from {{ ref('stg_orders') }}\n{% if is_incremental() %}\n    where id > 0\n{% endif %}\n"
    )
    result = lint("sqlfluff", model)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_accepts_github_actions_on_key(tmp_path: Path) -> None:
    workflow = tmp_path / "ok.yaml"
    workflow.write_text("on:\n  push:\n    branches: [main]\n")
    assert lint("yamllint", workflow).returncode == 0


def test_unknown_linter_is_an_error() -> None:
    result = lint("prettier")
    assert result.returncode == 2
    assert "unknown linter 'prettier'" in result.stderr


def test_every_linter_has_a_pre_commit_hook_calling_ci_lint() -> None:
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    entries = {hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {f"bash ci/lint.sh {name}" for name in LINTERS} <= entries


def _workflows() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def test_workflows_exist() -> None:
    assert set(_workflows()) >= {"ci.yml", "deploy.yml"}


@pytest.mark.parametrize("workflow", ["ci.yml", "deploy.yml"])
def test_workflow_is_least_privilege_and_pinned(workflow: str) -> None:
    text = (WORKFLOWS / workflow).read_text()
    data = yaml.safe_load(text)
    assert data["permissions"] == {}, "top-level permissions must be empty; jobs ask for what they need"
    assert "concurrency" in data
    for name, job in data["jobs"].items():
        assert "timeout-minutes" in job, name
        assert set(job["permissions"]) <= {"contents", "id-token"}, name
        assert job["permissions"]["contents"] == "read", name
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{name}: {step['uses']} is not pinned by commit SHA"
    # Every pin carries the version it stands for.
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line
    # Checkouts never leave the token in .git/config.
    checkouts = [s for job in data["jobs"].values() for s in job["steps"] if "actions/checkout" in s.get("uses", "")]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_only_the_deploy_jobs_may_request_an_oidc_token() -> None:
    ci = _workflows()["ci.yml"]
    assert all(job["permissions"] == {"contents": "read"} for job in ci["jobs"].values())
    deploy = _workflows()["deploy.yml"]
    assert all(job["permissions"] == {"contents": "read", "id-token": "write"} for job in deploy["jobs"].values())


def test_ci_workflow_runs_every_pipeline_stage_each_job_in_the_pipelines_order() -> None:
    ci = _workflows()["ci.yml"]
    seen: set[str] = set()
    for name, job in ci["jobs"].items():
        runs = [step["run"] for step in job["steps"] if "run" in step]
        stages = [run.removeprefix("bash ci/pipeline.sh ") for run in runs if run.startswith("bash ci/pipeline.sh ")]
        assert stages == sorted(stages, key=STAGES.index), name
        seen |= set(stages)
    assert seen == set(STAGES)
    # the tests stage runs in every shard of one split (tests/schedule.py's --shard K/N)
    test = ci["jobs"]["test"]
    shards = test["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))
    assert test["env"]["TEST_SHARD"] == f"${{{{ matrix.shard }}}}/{len(shards)}"
    assert test["strategy"]["fail-fast"] is False  # one shard's failure does not hide the other's


def test_ci_workflow_keeps_the_manifest_and_test_reports() -> None:
    ci = _workflows()["ci.yml"]
    uploads = [s["with"] for job in ci["jobs"].values() for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    paths = "\n".join(upload["path"] for upload in uploads)
    assert ".local/ci/*/manifest.json" in paths
    assert ".local/ci/junit/" in paths
    assert ci["concurrency"]["cancel-in-progress"] is True
    triggers = ci[True]  # YAML 1.1 reads the key `on` as a boolean
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]


def test_deploy_workflow_never_cancels_a_deploy_and_uses_oidc_for_azure() -> None:
    deploy = _workflows()["deploy.yml"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    logins = [s for job in deploy["jobs"].values() for s in job["steps"] if "azure/login" in s.get("uses", "")]
    assert logins
    for login in logins:
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}, "OIDC, not a stored secret"
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "bash ci/preflight.sh" in text
    assert "bash ci/deploy-image.sh" in text
    assert "bash ci/deploy-astro.sh" in text
