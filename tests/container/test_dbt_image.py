"""The dbt runtime image, run for real: through its entrypoint, against a real PostgreSQL reached
over the host network, the way Cosmos's container modes invoke it (`dbt <command> ...`, no
--project-dir)."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, actual_marts, expected_marts
from tests.container.conftest import RunImage, container_env
from tools.postgres import ConnectionSettings, free_port

pytestmark = [pytest.mark.integration, pytest.mark.container]
LOCK = (REPO_ROOT / "dbt" / "requirements.lock.txt").read_text()
DBT_CORE = re.search(r"^dbt-core==(\S+)", LOCK, re.MULTILINE).group(1)
DBT_POSTGRES = re.search(r"^dbt-postgres==(\S+)", LOCK, re.MULTILINE).group(1)
# The schema the image's partial parse was baked for: the profile's default (see docker/README.md).
BAKED_SCHEMA = "jaffle_shop"
REUSED = "Partial parsing enabled, no changes found, skipping parsing"
REPARSED = "Unable to do partial parsing because profile has changed"


def _inspect(image: str) -> dict:
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]


def test_dbt_version_is_the_locked_one_with_or_without_a_leading_dbt(run_image: RunImage) -> None:
    for command in (["dbt", "--version"], ["--version"]):
        run = run_image(*command)
        assert run.returncode == 0, run.output
        assert f"installed: {DBT_CORE}" in run.output
        assert f"postgres: {DBT_POSTGRES}" in run.output


def test_runs_as_non_root_with_oci_labels(dbt_image: str, run_image: RunImage) -> None:
    config = _inspect(dbt_image)["Config"]
    assert config["User"] == "10001:0"
    assert config["Entrypoint"] == ["dbt"]
    labels = config["Labels"]
    assert labels["io.getdbt.dbt-core.version"] == DBT_CORE
    assert labels["io.getdbt.dbt-postgres.version"] == DBT_POSTGRES
    assert {"org.opencontainers.image.source", "org.opencontainers.image.version"} <= labels.keys()
    run = run_image("-c", "id -u; dbt --version >/dev/null && echo dbt-ok", entrypoint="/bin/bash")
    assert run.output.split() == ["10001", "dbt-ok"], run.output  # also: `dbt` on PATH without the entrypoint


def test_offline_commands_need_no_database_variables(run_image: RunImage) -> None:
    listed = run_image("dbt", "ls", "--resource-type", "model", "--output", "name")
    assert listed.returncode == 0, listed.output
    assert {"stg_customers", "customers", "orders"} <= set(listed.output.split())
    parsed = run_image("dbt", "parse", "--project-dir", "/usr/app/dbt")  # Cloud Run passes --project-dir
    assert parsed.returncode == 0, parsed.output


def test_missing_variable_is_named_before_dbt_starts(postgres: ConnectionSettings, run_image: RunImage) -> None:
    env = container_env(postgres)
    del env["POSTGRES_PASSWORD"]
    run = run_image("dbt", "build", env=env, timeout=60)
    assert run.returncode == 2
    assert "`dbt build` connects to PostgreSQL, but these variables are not set: POSTGRES_PASSWORD" in run.output


def test_dbt_debug_connects(postgres: ConnectionSettings, run_image: RunImage) -> None:
    # --connection: plain `dbt debug` also wants git, which the image leaves out (packages are
    # installed at build time); it reports that one failed check and the connection as OK.
    run = run_image("dbt", "debug", "--connection", env=container_env(postgres))
    assert run.returncode == 0, run.output
    assert "OK connection ok" in run.output
    assert "All checks passed!" in run.output


def test_dbt_build_then_one_model_reuses_the_baked_partial_parse(
    postgres: ConnectionSettings, run_image: RunImage
) -> None:
    env = container_env(postgres)  # no POSTGRES_SCHEMA: the profile's default, as at build time
    build = run_image("dbt", "build", env=env, timeout=300)
    assert build.returncode == 0, build.output[-3000:]
    assert re.search(r"PASS=\d+ WARN=0 ERROR=0 SKIP=0", build.output), build.output[-2000:]
    assert actual_marts(postgres, BAKED_SCHEMA) == expected_marts(scale=1)

    # Another host, port and user than the build's placeholders: the entrypoint re-keys the parse.
    one_model = run_image("dbt", "--debug", "run", "--select", "stg_customers", env=env)
    assert one_model.returncode == 0, one_model.output[-3000:]
    assert REUSED in one_model.output
    # Without the entrypoint, dbt itself rejects the baked parse: why the entrypoint re-keys it.
    plain = run_image("run", "--select", "stg_customers", env=env, entrypoint="/opt/dbt/bin/dbt")
    assert plain.returncode == 0, plain.output[-3000:]
    assert REPARSED in plain.output


def test_another_schema_is_parsed_afresh(postgres: ConnectionSettings, run_image: RunImage) -> None:
    """The schema is part of the parse result: re-keying must not apply the baked parse to another."""
    run = run_image("dbt", "--debug", "parse", env=container_env(postgres, schema="container_other"))
    assert run.returncode == 0, run.output[-3000:]
    assert REUSED not in run.output
    assert REPARSED in run.output


def test_wrong_password_fails_fast_and_clearly(postgres: ConnectionSettings, run_image: RunImage) -> None:
    env = {**container_env(postgres), "POSTGRES_PASSWORD": "not-the-password"}
    run = run_image("dbt", "debug", "--connection", env=env, timeout=60)
    assert run.returncode != 0
    assert "password authentication failed" in run.output


def test_unreachable_database_fails_fast_and_clearly(postgres: ConnectionSettings, run_image: RunImage) -> None:
    env = {**container_env(postgres), "POSTGRES_PORT": str(free_port())}  # nothing listens there
    run = run_image("dbt", "run", "--select", "stg_customers", env=env, timeout=60)
    assert run.returncode != 0
    assert "Connection refused" in run.output or "could not connect" in run.output.lower(), run.output[-2000:]
    assert run.seconds < 45


# -- no credential in the image ------------------------------------------------------------------
SECRET_FILES = {".pgpass", ".netrc", ".env", ".pypirc", ".git-credentials", "id_rsa", "id_ed25519", "pip.conf"}
# A private key, an AWS key id, or a password given a literal value (not a template or variable).
SECRET_TEXT = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|(?i:password)\s*[:=]\s*['\"]?[^\s'\"{$]"
)
OUR_PATHS = ("usr/app/", "usr/local/bin/dbt")


def _layer_findings(archive: Path, known_secrets: list[bytes]) -> list[str]:
    """Every layer, not just the final file system: a file deleted later still ships in its layer."""
    findings = []
    with tarfile.open(archive) as image:
        layers = json.load(image.extractfile("manifest.json"))[0]["Layers"]
        for layer_name in layers:
            with tarfile.open(fileobj=image.extractfile(layer_name)) as layer:
                for member in layer:
                    name = member.name.removeprefix("./")
                    if Path(name).name in SECRET_FILES:
                        findings.append(f"{layer_name}: {name}")
                    if not member.isfile() or member.size > 20_000_000:
                        continue
                    data = layer.extractfile(member).read()
                    if any(secret in data for secret in known_secrets):
                        findings.append(f"{layer_name}: {name} holds a password of this test session")
                    if name.startswith(OUR_PATHS) and SECRET_TEXT.search(data):
                        findings.append(f"{layer_name}: {name}: {SECRET_TEXT.search(data).group()[:40]!r}")
    return findings


def test_no_credential_in_config_history_or_layers(
    dbt_image: str, postgres: ConnectionSettings, tmp_path: Path
) -> None:
    known = [postgres.password.encode()]
    config = _inspect(dbt_image)["Config"]
    assert [item for item in config["Env"] if re.match(r"POSTGRES_|.*(PASSWORD|SECRET|TOKEN)", item)] == []
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", dbt_image],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert not re.search(r"PASSWORD|\bPOSTGRES_|SECRET|TOKEN", history, re.IGNORECASE), history
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), dbt_image], check=True, timeout=300)
    assert _layer_findings(archive, known) == []
    # The profile the image ships reads every connection setting from the environment.
    profile = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", dbt_image, "profiles.yml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert profile == (REPO_ROOT / "dbt" / "jaffle_shop" / "profiles.yml").read_text()
