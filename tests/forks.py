"""A fork of this repository as a team makes it: a copy of the committed and working-tree files
(not .venvs/ or .local/: the venvs are linked, the state is new), in which the tests run the
repository's own commands, such as `make adopt`, and its own tests, unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tools.local_env import QUIET_DBT
from tools.postgres import ConnectionSettings


def make_fork(dest: Path) -> Path:
    """Copy the repository's files (tracked and new, not ignored) to `dest`; link its venvs."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listed):
        source = REPO_ROOT / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative)
    (dest / ".venvs").symlink_to(REPO_ROOT / ".venvs")
    return dest


def run_in(
    fork: Path, *command: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """A command of the fork's own (`python -m tools.adopt ...`), run from its root."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("BLUEPRINT", "AIRFLOW"))}
    return subprocess.run(
        [sys.executable, *command], cwd=fork, capture_output=True, text=True, timeout=timeout,
        env={**clean, **QUIET_DBT, "PYTHONPATH": str(fork), **(env or {})},
    )  # fmt: skip


def fork_airflow_env(fork: Path, base: dict[str, str]) -> dict[str, str]:
    """An environment from tools.local_env.airflow_env, pointed at the fork's code and DAGs."""
    return {**base, "PYTHONPATH": str(fork), "AIRFLOW__CORE__DAGS_FOLDER": str(fork / "dags")}


def run_fork_dag(fork: Path, dag_id: str, env: dict[str, str]) -> tuple[dict, str]:
    """`python -m tools.run_dag` in the fork: the JSON summary and everything it logged."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.run_dag", dag_id], cwd=fork, env=env, capture_output=True, text=True, timeout=900
    )
    lines = result.stdout.strip().splitlines()
    return (json.loads(lines[-1]) if lines else {"state": "no output"}), result.stdout + result.stderr


def row_counts(database: ConnectionSettings, schema: str) -> dict[str, int]:
    """Rows of every table and view in `schema`."""
    relations = database.query(
        "select table_name from information_schema.tables where table_schema = %s order by 1", schema
    )
    return {name: database.query(f'select count(*) from "{schema}"."{name}"')[0][0] for (name,) in relations}
