"""Shared by the warm dbt tests (test_warm_dbt.py, test_warm_dbt_writes.py): a task's environment
with a warm dbt server of its own, and dbt commands run the way a Cosmos task runs them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import dbt_env
from tools.local_env import DBT_BIN
from tools.postgres import ConnectionSettings

WARM_SCHEMA = "warm_dbt"


@pytest.fixture
def warm_env(postgres: ConnectionSettings) -> Iterator[dict[str, str]]:
    """The environment of a task calling the warm client; its own TMPDIR gives it its own server."""
    # short: the server's socket, <TMPDIR>/warm-dbt-<uid>/<20 hex>.sock, must fit 107 bytes, and
    # tmp_path is deep under pytest-xdist
    temp = Path(tempfile.mkdtemp(prefix="blueprint-warm-"))
    env = {**dbt_env(postgres, WARM_SCHEMA), "WARM_DBT_EXECUTABLE": str(DBT_BIN / "dbt"), "TMPDIR": str(temp)}
    try:
        yield env
    finally:  # the server outlives its callers by design; the test's must not outlive the test
        for server in server_pids(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while server_pids(temp) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)


def server_pids(temp: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"warm_dbt/server.py {temp}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def run_dbt(
    executable: Path, project: Path, env: dict[str, str], *args: str, target: Path
) -> subprocess.CompletedProcess:
    command = [str(executable), "--no-use-colors", *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(
        [*command, "--target-path", str(target), "--log-path", str(target)],
        env=env, capture_output=True, text=True, timeout=300, cwd=project,
    )  # fmt: skip


def project_copy(jaffle_project: Path, folder: Path) -> Path:
    """jaffle_shop with one model of its own, which the tests edit (never the shared project)."""
    project = folder / "jaffle_shop"
    shutil.copytree(jaffle_project, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "cache_probe.sql").write_text("{{ config(materialized='table') }}\nselect 1 as answer\n")
    return project
