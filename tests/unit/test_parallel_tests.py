"""`make test` runs on pytest-xdist workers: the container tests must all land on one worker, each
other test file on whichever is free. A small session with the repository's conftest as a plugin, in a
subprocess, on two workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import REPO_ROOT
from tests.leaks import SESSION_VARIABLE, WORKER_VARIABLE

RECORDING_TEST = """
import os, time
from pathlib import Path

def test_{name}():
    time.sleep(0.3)  # long enough for the other worker to be free and take the next test
    with open(Path(os.environ["WORKER_LOG"]), "a") as log:
        log.write(f"{{__name__}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


def test_the_container_tests_share_one_worker(tmp_path: Path) -> None:
    for folder in ("container", "integration"):
        for index in range(4):
            module = tmp_path / "tests" / folder / f"test_{folder}_{index}.py"
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text(RECORDING_TEST.format(name=f"{folder}_{index}"))
    # the largest file, which pytest-xdist's own order would hand out first
    many = "".join(RECORDING_TEST.format(name=f"unit_{index}") for index in range(6))
    (tmp_path / "tests" / "unit").mkdir()
    (tmp_path / "tests" / "unit" / "test_unit_0.py").write_text(many)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "tmp").mkdir()
    log = tmp_path / "workers.log"
    env = {key: value for key, value in os.environ.items() if key not in (SESSION_VARIABLE, WORKER_VARIABLE)}
    env.update(TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(REPO_ROOT), WORKER_LOG=str(log))
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "-n", "2"]
    command += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base")]
    result = subprocess.run([*command, "tests"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    workers: dict[str, set[str]] = {"container": set(), "integration": set(), "unit": set()}
    first_on: dict[str, str] = {}
    for line in log.read_text().splitlines():
        module, worker = line.split()
        workers[module.split("_")[1]].add(worker)
        first_on.setdefault(worker, module.split("_")[1])
    assert len(workers["container"]) == 1, workers
    assert sorted(first_on.values()) == ["container", "integration"], first_on  # the long suites first
    # which worker takes which of the other tests depends on timing; both take some
    assert workers["container"] | workers["integration"] == {"gw0", "gw1"}, workers
    assert sorted(path.name for path in (tmp_path / "tmp").iterdir()) == []  # each worker's temp folder went


def test_a_file_is_one_unit_of_work_and_the_container_tests_are_one() -> None:
    """The scheduler's units of work: all container tests in one, every other test with its file."""
    from tests.conftest import pytest_xdist_make_scheduler

    config = SimpleNamespace(getvalue=lambda name: {"tx": ["2*popen"], "dist": "load"}.get(name))
    scheduler = pytest_xdist_make_scheduler(config, None)
    container = ["tests/container/test_a.py::test_one", "tests/container/test_b.py::test_two[x]"]
    assert len({scheduler._split_scope(nodeid) for nodeid in container}) == 1
    others = ["tests/integration/test_c.py::test_three", "tests/integration/test_c.py::test_four[y]"]
    others.append("tests/unit/t.py::t")
    scopes = [scheduler._split_scope(nodeid) for nodeid in others]
    assert scopes == ["tests/integration/test_c.py", "tests/integration/test_c.py", "tests/unit/t.py"]
    config = SimpleNamespace(getvalue=lambda name: {"tx": ["2*popen"], "dist": "loadfile"}.get(name))
    assert pytest_xdist_make_scheduler(config, None) is None  # an explicit choice is kept


def test_the_long_suites_go_out_first_and_a_files_tests_stay_together() -> None:
    from tests.conftest import heaviest_first, pytest_xdist_make_scheduler

    config = SimpleNamespace(getvalue=lambda name: {"tx": ["2*popen"], "dist": "load"}.get(name))
    scope_of = pytest_xdist_make_scheduler(config, None)._split_scope
    collected = [
        "tests/container/test_image.py::test_a",
        "tests/dags/test_dags.py::test_b",
        "tests/integration/test_one.py::test_c",
        "tests/integration/test_two.py::test_d",
        "tests/integration/test_two.py::test_e",
        "tests/unit/test_many.py::test_f",
        "tests/unit/test_many.py::test_g",
        "tests/unit/test_many.py::test_h",
        "tests/container/test_run.py::test_i",
    ]
    assert heaviest_first(collected, scope_of) == [
        "tests/container/test_image.py::test_a",  # every container test, one unit, first
        "tests/container/test_run.py::test_i",
        "tests/integration/test_two.py::test_d",  # then integration files, the larger first
        "tests/integration/test_two.py::test_e",
        "tests/integration/test_one.py::test_c",
        "tests/unit/test_many.py::test_f",  # then the rest, the larger first
        "tests/unit/test_many.py::test_g",
        "tests/unit/test_many.py::test_h",
        "tests/dags/test_dags.py::test_b",
    ]
