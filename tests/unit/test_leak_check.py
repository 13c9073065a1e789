"""The session's leak check (tests/leaks.py, run by tests/conftest.py) turns a run red, naming each
thing left behind, and keeps a clean run green: a small pytest session with the repository's own
conftest as a plugin, in a subprocess, with its own temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.leaks import SESSION_VARIABLE, WORKER_VARIABLE, container_is_ours, stop_new_processes, take_snapshot

LEAKY = """
import os, subprocess, tempfile
from pathlib import Path

def test_that_leaks():
    child = subprocess.Popen(["sleep", "300"])  # never stopped
    Path(os.environ["PLANTED_PID_FILE"]).write_text(str(child.pid))
    tempfile.mkdtemp(prefix="blueprint-planted-")  # never removed
"""

CLEAN = """
import subprocess, tempfile, shutil

def test_that_cleans_up():
    child = subprocess.Popen(["sleep", "300"])
    folder = tempfile.mkdtemp(prefix="blueprint-planted-")
    try:
        pass
    finally:
        child.kill()
        child.wait()
        shutil.rmtree(folder)
"""


def _session(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(source)
    (tmp_path / "tmp").mkdir()
    # a session of its own, also when this one is a pytest-xdist worker
    env = {key: value for key, value in os.environ.items() if key != SESSION_VARIABLE and key != WORKER_VARIABLE}
    env.update(
        TMPDIR=str(tmp_path / "tmp"),  # the inner session's temp folders stay out of the real one
        PYTHONPATH=str(REPO_ROOT),
        PLANTED_PID_FILE=str(tmp_path / "planted.pid"),
        LEAK_CHECK_GRACE_SECONDS="0.5",
    )
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q"]
    command += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base")]
    return subprocess.run(
        [*command, str(tmp_path / "test_inner.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_session_that_leaves_a_process_and_a_folder_fails_naming_both(tmp_path: Path) -> None:
    try:
        result = _session(tmp_path, LEAKY)
    finally:
        pid_file = tmp_path / "planted.pid"
        planted = int(pid_file.read_text()) if pid_file.exists() else None
        if planted is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(planted, signal.SIGKILL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 passed, 1 error" in output, output
    assert "left 2 thing(s) behind" in output, output
    assert f"process {planted}: sleep 300" in output, output
    (folder,) = (tmp_path / "tmp").glob("blueprint-planted-*")
    assert f"temporary folder {folder}" in output, output
    # the session's own home went, as it does in every run
    assert list((tmp_path / "tmp").glob("blueprint-tests-*")) == []


def test_a_session_that_cleans_up_passes(tmp_path: Path) -> None:
    result = _session(tmp_path, CLEAN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert sorted(path.name for path in (tmp_path / "tmp").iterdir()) == []


def test_containers_count_only_when_they_are_this_sessions() -> None:
    pid = 4242

    def container(name: str, labels: dict[str, str] | None = None, port: int | None = None) -> dict:
        env = [f"POSTGRES_PORT={port}"] if port else []
        return {"Name": f"/{name}", "Config": {"Labels": labels or {}, "Env": env}}

    ours = [
        container("dbt-image-test-4242-1"),
        container("web", {"com.docker.compose.project": "blueprint-test-4242"}),
        container("aci-x-group-c", {"aci-emulator": "x", "aci-emulator-owner": "4242"}),
        container("dbt-jaffle-shop-docker-orders-1a2b", port=5433),
    ]
    others = [
        container("dbt-image-test-999-1"),
        container("web", {"com.docker.compose.project": "blueprint-test-999"}),
        container("aci-y-group-c", {"aci-emulator": "y", "aci-emulator-owner": "999"}),
        container("dbt-jaffle-shop-docker-orders-1a2b", port=6000),
        container("dbt-jaffle-shop-docker-orders-1a2b"),
        container("someone-elses"),
    ]
    assert [container_is_ours(c, pid, {5433}) for c in ours] == [True] * len(ours)
    assert [container_is_ours(c, pid, {5433}) for c in others] == [False] * len(others)


def test_the_session_stops_its_warm_dbt_servers_in_a_fork_too(tmp_path: Path) -> None:
    """A DAG run in a fork of the repository starts the fork's copy of the warm dbt server; the
    session stops it like its own (the server outlives its task by design)."""
    before = take_snapshot()
    server = tmp_path / "fork0" / "include" / "blueprint" / "warm_dbt" / "server.py"
    server.parent.mkdir(parents=True)
    server.write_text("import time\ntime.sleep(300)\n")
    other = tmp_path / "other.py"
    other.write_text("import time\ntime.sleep(300)\n")
    fork_server = subprocess.Popen([sys.executable, str(server)], start_new_session=True)
    unrelated = subprocess.Popen([sys.executable, str(other)], start_new_session=True)
    try:
        stopped = stop_new_processes(before, "include/blueprint/warm_dbt/server.py", [str(tmp_path)])
        assert stopped == [fork_server.pid]
        assert fork_server.wait(timeout=10) is not None
        assert unrelated.poll() is None
    finally:
        for process in (fork_server, unrelated):
            process.kill()
            process.wait()


WORKER_PROBE = """
import json, os, subprocess, sys, tempfile
from tests import leaks
first = leaks.mark_session(), str(leaks.isolate_worker_temp())
again = leaks.mark_session(), str(leaks.isolate_worker_temp())
CHILD = "import os, tempfile; print(os.environ['LEAK_CHECK_SESSION'], tempfile.gettempdir())"
child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
print(json.dumps({"first": first, "again": again, "child": child, "tempdir": tempfile.gettempdir()}))
"""


def test_each_pytest_xdist_worker_is_a_session_with_a_temp_folder_of_its_own(tmp_path: Path) -> None:
    """Under `pytest -n N` one worker's leak check must neither claim nor miss what another starts:
    the session id ends with the worker's name, the worker's temp folders live in a folder of its
    own, and what the worker starts inherits both."""
    env = {**os.environ, SESSION_VARIABLE: "4242-cafe", WORKER_VARIABLE: "gw1", "TMPDIR": str(tmp_path)}
    probe = subprocess.run([sys.executable, "-c", WORKER_PROBE], env={**env, "PYTHONPATH": str(REPO_ROOT)},
                           capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(probe.stdout)
    session, folder = report["first"]
    assert session == "4242-cafe-gw1"
    assert Path(folder).parent == tmp_path
    assert Path(folder).name.startswith("blueprint-worker-gw1-")
    assert report["again"] == [session, folder]
    assert report["child"] == [session, folder]
    assert report["tempdir"] == folder
    outside = subprocess.run([sys.executable, "-c", WORKER_PROBE],
                             env={**env, WORKER_VARIABLE: "", "PYTHONPATH": str(REPO_ROOT)},
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(outside.stdout)["first"] == ["4242-cafe", "None"]
