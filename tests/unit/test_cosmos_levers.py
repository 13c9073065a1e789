"""The Cosmos levers (include/blueprint/cosmos_levers.py): pinned to the Cosmos they were checked
against, skipping OpenLineage's per-task work only when nothing would emit the events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint import cosmos_levers

REPO = Path(__file__).resolve().parents[2]
# In a fresh process: is the lever installed, what does the method return, and was OpenLineage's
# dbt processor imported (the work the lever saves)?
PROBE = """
import json, sys
import airflow
from include.blueprint import cosmos_configs
from cosmos.operators.local import DbtLocalBaseOperator, DbtRunLocalOperator
operator = DbtRunLocalOperator(task_id="probe", project_dir="/nonexistent", profile_config=None)
result = operator.calculate_openlineage_events_completes({}, __import__("pathlib").Path("/nonexistent"), ["run"])
print(json.dumps({
    "installed": getattr(
        DbtLocalBaseOperator.calculate_openlineage_events_completes, cosmos_configs.cosmos_levers.MARK, False
    ),
    "result": result,
    "processor_imported": "openlineage.common.provider.dbt.local" in sys.modules,
}))
"""


def _probe(extra_env: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    env.update({"PYTHONPATH": str(REPO), **extra_env})
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_lever_is_checked_against_the_installed_cosmos() -> None:
    assert cosmos_levers.lever_applies(), (
        "Cosmos is no longer the version include/blueprint/cosmos_levers.py was checked against: re-check "
        "that DbtLocalBaseOperator.calculate_openlineage_events_completes is still only lineage work, and "
        "that nothing Cosmos runs after a dbt command (run_command, _handle_post_execution) reads "
        "target/manifest.json but the lineage work and the partial-parse cache's copy, then update "
        "COSMOS_VERSION_CHECKED"
    )


def test_no_lineage_work_when_openlineage_would_not_emit() -> None:
    probe = _probe({"AIRFLOW__OPENLINEAGE__DISABLED": "True"})
    assert probe == {"installed": True, "result": False, "processor_imported": False}


def test_lineage_work_is_done_when_openlineage_emits(monkeypatch) -> None:
    cosmos_levers.install()
    from cosmos.operators.local import DbtLocalBaseOperator, DbtRunLocalOperator

    lookups: list[str] = []
    # Cosmos's first step of the lineage work: finding OpenLineage's dbt processor (None: stop there).
    monkeypatch.setattr(
        DbtLocalBaseOperator, "_get_dbt_local_artifact_processor", staticmethod(lambda: lookups.append("looked up"))
    )
    operator = DbtRunLocalOperator(task_id="probe", project_dir="/nonexistent", profile_config=None)
    monkeypatch.setattr(cosmos_levers, "lineage_is_emitted", lambda: False)
    operator.calculate_openlineage_events_completes({}, Path("/nonexistent"), ["run"])
    assert lookups == [], "lineage work was done although nothing would emit it"
    monkeypatch.setattr(cosmos_levers, "lineage_is_emitted", lambda: True)
    operator.calculate_openlineage_events_completes({}, Path("/nonexistent"), ["run"])
    assert lookups == ["looked up"], "with lineage on, Cosmos's own lineage work must run"


def _dbt_env(monkeypatch, callback: object = None, env: dict[str, str] | None = None) -> dict[str, object]:
    cosmos_levers.install()
    from cosmos.operators.local import DbtRunLocalOperator

    operator = DbtRunLocalOperator(
        task_id="probe", project_dir="/nonexistent", profile_config=None, callback=callback, env=env or {}
    )  # fmt: skip
    monkeypatch.delenv(cosmos_levers.END_MANIFEST_SWITCH, raising=False)
    return operator.get_env({})


def test_the_end_manifest_is_skipped_when_nothing_after_dbt_reads_it(monkeypatch) -> None:
    from include.blueprint.alerts import remember_dbt_failures
    from include.blueprint.artifact_settings import ArtifactSettings
    from include.blueprint.artifacts import KeepArtifacts

    monkeypatch.setattr(cosmos_levers, "lineage_is_emitted", lambda: False)
    switch = cosmos_levers.END_MANIFEST_SWITCH
    assert _dbt_env(monkeypatch)[switch] == "on-failure"
    assert _dbt_env(monkeypatch, [remember_dbt_failures])[switch] == "on-failure"  # reads run_results only
    keep = KeepArtifacts(ArtifactSettings(enabled=True, location="/tmp/artifacts"))
    assert switch not in _dbt_env(monkeypatch, [remember_dbt_failures, keep])  # keeps the manifest
    assert switch not in _dbt_env(monkeypatch, "cosmos.io.upload_to_aws_s3")  # might read it
    assert _dbt_env(monkeypatch, env={switch: "always"})[switch] == "always"  # the task's choice stands
    monkeypatch.setattr(cosmos_levers, "lineage_is_emitted", lambda: True)
    assert switch not in _dbt_env(monkeypatch)  # OpenLineage's events are built from it


def test_the_end_manifest_lever_wraps_cosmos_once_and_speaks_warm_dbts_language() -> None:
    import importlib.util

    from cosmos.operators.base import AbstractDbtBase
    from cosmos.operators.local import DbtLocalBaseOperator

    cosmos_levers.install()
    cosmos_levers.install()  # as a task does after its worker preloaded the module
    assert DbtLocalBaseOperator.get_env.__wrapped__ is AbstractDbtBase.get_env
    path = REPO / "include" / "blueprint" / "warm_dbt" / "manifest_writes.py"  # run by dbt's Python, not imported
    spec = importlib.util.spec_from_file_location("manifest_writes", path)
    manifest_writes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(manifest_writes)
    assert (manifest_writes.END_MANIFEST_SWITCH, manifest_writes.ON_FAILURE) == (
        cosmos_levers.END_MANIFEST_SWITCH, cosmos_levers.ON_FAILURE,
    )  # fmt: skip
