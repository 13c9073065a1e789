"""What a warm dbt command writes to target/ (include/blueprint/warm_dbt/manifest_writes.py): the
manifest once, at the end; dbt's JSON artifacts in one pass, byte for byte as dbt writes them; and
no end-of-command manifest after a success when the task says nothing reads it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from include.blueprint.cosmos_configs import WARM_DBT
from tests.integration.conftest import project_copy, run_dbt
from tools.local_env import DBT_BIN
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration


RUNNING_SLEEPY = "select 1 from pg_stat_activity where query like '%pg_sleep(3)%' and pid <> pg_backend_pid()"


def _sleepy_project(folder: Path) -> Path:
    """A one-model project whose model runs long enough to look at target/ while it runs."""
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text("name: sleepy\nversion: '1.0'\nprofile: jaffle_shop\n")
    (folder / "models" / "sleepy.sql").write_text(
        "{{ config(materialized='table') }}\nselect pg_sleep(3)::text as slept\n"
    )
    return folder


def _manifest_while_the_model_runs(
    jaffle_project: Path, project: Path, postgres: ConnectionSettings, env: dict[str, str], target: Path
) -> tuple[bool, dict]:
    command = [str(WARM_DBT), "build", "--project-dir", str(project), "--profiles-dir", str(jaffle_project)]
    command += ["--target-path", str(target), "--log-path", str(target)]
    with subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as dbt:
        deadline = time.monotonic() + 120
        while not postgres.query(RUNNING_SLEEPY):
            if dbt.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the model never ran:\n{dbt.communicate(timeout=60)[0].decode()[-3000:]}")
            time.sleep(0.05)
        written_before_the_end = (target / "manifest.json").exists()
        output = dbt.communicate(timeout=120)[0].decode()
    assert dbt.returncode == 0, output[-3000:]
    return written_before_the_end, json.loads((target / "manifest.json").read_text())


def test_a_build_writes_its_manifest_once_at_the_end(
    jaffle_project: Path, postgres: ConnectionSettings, warm_env: dict[str, str], tmp_path: Path
) -> None:
    project = _sleepy_project(tmp_path / "sleepy")
    early, manifest = _manifest_while_the_model_runs(jaffle_project, project, postgres, warm_env, tmp_path / "once")
    off = {**warm_env, "WARM_DBT_WRITE_ONCE": "0"}
    early_off, manifest_off = _manifest_while_the_model_runs(jaffle_project, project, postgres, off, tmp_path / "twice")
    assert (early, early_off) == (False, True), "dbt's manifest write after parsing is skipped only when on"
    # The manifest a task leaves is dbt's own end-of-command one, with the SQL that ran.
    node = "model.sleepy.sleepy"
    assert "pg_sleep(3)" in manifest["nodes"][node]["compiled_code"]
    assert manifest["nodes"].keys() == manifest_off["nodes"].keys()


ONE_PASS_CHECK = """
import datetime, decimal, json, os, sys
sys.path.insert(0, sys.argv[1])
from dbt.cli.main import dbtRunner  # the artifact writers, imported as a dbt command has them
from dbt_common.clients import system
import dbt.artifacts.schemas.base, dbt.artifacts.schemas.run.v5.run
import manifest_writes
data = json.load(open(sys.argv[2]))
when, amount = datetime.datetime(2026, 1, 2, 3, 4, 5), decimal.Decimal("1.50")
from dbt.artifacts.schemas.results import RunStatus
data["extra"] = {"at": when, "amount": amount, "text": "\\u00e9\\u2028", RunStatus.Success: RunStatus.Error}
system.write_json(sys.argv[3], data)
manifest_writes.encode_json_in_one_pass()
writers = (system, dbt.artifacts.schemas.base, dbt.artifacts.schemas.run.v5.run)
print(json.dumps([module.write_json is manifest_writes.write_json_in_one_pass for module in writers]))
dbt.artifacts.schemas.base.write_json(sys.argv[4], data)
"""


@pytest.mark.parametrize("switch", ["1", "0"])
def test_artifacts_are_written_in_one_pass_with_the_same_text(
    jaffle_project: Path, tmp_path: Path, switch: str
) -> None:
    """The one-pass writer is what dbt's artifact writers call in a fork, and it writes byte for
    byte what dbt's own write_json writes (dbt's encoder for dates, decimals and enums included)."""
    script, as_dbt, one_pass = tmp_path / "check.py", tmp_path / "dbt.json", tmp_path / "one_pass.json"
    script.write_text(ONE_PASS_CHECK)
    args = [WARM_DBT.parent, jaffle_project / "target" / "manifest.json", as_dbt, one_pass]
    result = subprocess.run(
        [str(DBT_BIN / "python"), str(script), *map(str, args)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "WARM_DBT_ONE_PASS_JSON": switch},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [switch == "1"] * 3
    assert as_dbt.stat().st_size > 100_000
    assert one_pass.read_bytes() == as_dbt.read_bytes()


PLACED = b'{"placed": "by Cosmos, before dbt runs"}'


@pytest.mark.parametrize("switch", ["on-failure", None])
def test_the_end_manifest_is_skipped_only_after_a_success_and_only_when_asked(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path, switch: str | None
) -> None:
    project = project_copy(jaffle_project, tmp_path)
    env = {**warm_env, "POSTGRES_SCHEMA": "warm_dbt_end_manifest"}
    if switch:
        env["WARM_DBT_END_MANIFEST"] = switch

    def run(name: str, placed: bool = True) -> tuple[subprocess.CompletedProcess, Path]:
        target = tmp_path / name
        target.mkdir()
        if placed:  # as Cosmos copies the manifest of its cache into the task's target/
            (target / "manifest.json").write_bytes(PLACED)
        return run_dbt(WARM_DBT, project, env, "run", "--select", "cache_probe", target=target), target

    succeeded, target = run("succeeded")
    assert succeeded.returncode == 0, succeeded.stdout[-3000:]
    assert json.loads((target / "run_results.json").read_text())["results"][0]["status"] == "success"
    assert ((target / "manifest.json").read_bytes() == PLACED) == (switch == "on-failure")
    nothing_placed, target = run("nothing-placed", placed=False)
    assert nothing_placed.returncode == 0, nothing_placed.stdout[-3000:]
    assert "model.jaffle_shop.cache_probe" in json.loads((target / "manifest.json").read_text())["nodes"]
    (project / "models" / "cache_probe.sql").write_text("{{ config(materialized='table') }}\nselect 1 / 0 as answer\n")
    failed, target = run("failed")
    assert failed.returncode == 1, failed.stdout[-3000:]
    node = json.loads((target / "manifest.json").read_text())["nodes"]["model.jaffle_shop.cache_probe"]
    assert "1 / 0" in node["compiled_code"]  # the failed command's own manifest, for its compiled path
