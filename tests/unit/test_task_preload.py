"""The task preload (include/blueprint/task_preload.py), in fresh processes that fork as Airflow's
do: a forked task inherits Cosmos and the blueprint, never a stale setting or a stale source file,
and processes that fork no task import nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from include.blueprint.task_preload import forks_tasks
from tests.conftest import REPO_ROOT

# Imports the local settings as Airflow does, forks a "task" and reports what the task inherited.
# With PROBE_EDIT set, that blueprint file is then edited, as a developer would between two tasks.
PROBE = """
import json, os, sys
import airflow_local_settings
edit = os.environ.get("PROBE_EDIT", "")
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    inherited = {
        "cosmos": "cosmos.operators.local" in sys.modules,
        "blueprint": "include.blueprint.pipelines" in sys.modules,
        "settings_cached": getattr(sys.modules.get("include.blueprint.settings"), "settings", None) is not None
        and sys.modules["include.blueprint.settings"].settings.cache_info().currsize,
    }
    os.write(write, json.dumps(inherited).encode())
    os._exit(0)
os.waitpid(pid, 0)
report = json.loads(os.read(read, 100000))
if edit:
    with open(edit, "a") as source:
        source.write("\\nEDITED_AFTER_THE_PRELOAD = True\\n")
    pid = os.fork()
    if pid == 0:
        import include.blueprint.pipelines as pipelines
        from include.blueprint import selection
        os.write(write, json.dumps([hasattr(pipelines, "EDITED_AFTER_THE_PRELOAD"),
                                    hasattr(selection, "EDITED_AFTER_THE_PRELOAD")]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    report["edit_seen"] = json.loads(os.read(read, 100000))
report["preloaded"] = len(airflow_local_settings.TASK_PRELOADED)
report["own_in_parent"] = sorted(name for name in sys.modules if name.startswith("include."))
print(json.dumps(report))
"""


def _probe(command: str, repo: Path = REPO_ROOT, edit: str = "", **env: str) -> dict:
    """Run PROBE as `airflow <command>` would start, with the repository at `repo`."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__")}
    environ.update({"PYTHONPATH": f"{repo}{os.pathsep}{repo / 'config'}", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"})
    environ.update({**env, "PROBE_EDIT": edit})
    script = f"import sys; sys.argv = ['airflow', *{command.split()!r}]\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("argv", "executor", "expected"),
    [
        (["airflow", "scheduler"], "LocalExecutor", True),
        (["airflow", "scheduler", "--skip-serve-logs"], "LocalExecutor", True),
        (["airflow", "scheduler"], "CeleryExecutor", False),  # its tasks run on the Celery workers
        (["airflow", "celery", "worker"], "CeleryExecutor", True),
        (["airflow", "dag-processor"], "LocalExecutor", False),
        (["airflow", "api-server"], "LocalExecutor", False),
        (["airflow", "triggerer"], "LocalExecutor", False),
        (["airflow", "dags", "test", "x"], "LocalExecutor", False),
    ],
)
def test_only_processes_that_fork_tasks_preload(argv: list[str], executor: str, expected: bool) -> None:
    assert forks_tasks(argv, executor) is expected


def test_a_task_forked_from_the_scheduler_inherits_cosmos_and_the_blueprint_but_no_setting() -> None:
    report = _probe("scheduler")
    assert report["cosmos"], report
    assert report["blueprint"], report
    assert report["settings_cached"] == 0, "the preload must not fill the settings cache the tasks read"
    assert report["preloaded"] > 0


def test_the_off_switch_and_other_processes_preload_nothing() -> None:
    for command, env in (("scheduler", {"BLUEPRINT_TASK_PRELOAD": "0"}), ("dag-processor", {})):
        report = _probe(command, **env)
        inherited = (report["cosmos"], report["blueprint"], report["preloaded"])
        assert inherited == (False, False, 0), (command, report)
        # The DAG processor forks its parsers from this process: no blueprint module may stay loaded.
        assert report["own_in_parent"] == [], (command, report)


def test_an_edited_blueprint_file_is_read_from_disk_by_the_next_task(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for folder in ("include", "config", "dbt"):
        shutil.copytree(
            REPO_ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "target", "logs")
        )
    report = _probe("scheduler", repo=repo, edit=str(repo / "include" / "blueprint" / "selection.py"))
    assert report["blueprint"], report  # preloaded before the edit
    # The edited module and every other blueprint module are imported anew in the task.
    assert report["edit_seen"] == [False, True], report
