"""`make test` runs on pytest-xdist workers: the container tests must all land on one worker, each
other test file on whichever is free. A small session with the repository's conftest as a plugin, in a
subprocess, on two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO_ROOT
from tests.leaks import SESSION_VARIABLE, WORKER_VARIABLE
from tests.schedule import (
    DURATIONS_VARIABLE,
    expected_seconds,
    load_durations,
    longest_first,
    parse_shard,
    split_into_shards,
)

RECORDING_TEST = """
import os, time
from pathlib import Path

def test_{name}():
    time.sleep(0.3)  # long enough for the other worker to be free and take the next test
    with open(Path(os.environ["WORKER_LOG"]), "a") as log:
        log.write(f"{{__name__}} {{os.environ.get('PYTEST_XDIST_WORKER', 'main')}}\\n")
"""
RECORD = {
    "tests/container/": {"seconds": 400, "tests": 4},
    "tests/integration/test_integration_0.py": {"seconds": 10, "tests": 1},
    "tests/integration/test_integration_3.py": {"seconds": 200, "tests": 1},  # the longest file
    "tests/unit/test_unit_0.py": {"seconds": 3, "tests": 6},
}


def inner_session(tmp_path: Path, *options: str) -> list[tuple[str, str]]:
    """Four container and four integration files of one test each, a unit file of six, and
    RECORD as their durations, run by a pytest session with the repository's conftest as a
    plugin: (module, worker) of each test, in the order they ended."""
    for folder in ("container", "integration"):
        for index in range(4):
            module = tmp_path / "tests" / folder / f"test_{folder}_{index}.py"
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text(RECORDING_TEST.format(name=f"{folder}_{index}"))
    # the file with the most tests, which pytest-xdist's own order would hand out first
    many = "".join(RECORDING_TEST.format(name=f"unit_{index}") for index in range(6))
    (tmp_path / "tests" / "unit").mkdir(exist_ok=True)
    (tmp_path / "tests" / "unit" / "test_unit_0.py").write_text(many)
    (tmp_path / "durations.json").write_text(json.dumps({"units": RECORD}))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    log = tmp_path / "workers.log"
    log.unlink(missing_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in (SESSION_VARIABLE, WORKER_VARIABLE)}
    env.update(TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(REPO_ROOT), WORKER_LOG=str(log))
    env[DURATIONS_VARIABLE] = str(tmp_path / "durations.json")
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", *options]
    command += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base")]
    result = subprocess.run([*command, "tests"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def test_the_container_tests_share_one_worker_and_the_longest_files_go_first(tmp_path: Path) -> None:
    ran = inner_session(tmp_path, "-n", "2")
    workers: dict[str, set[str]] = {"container": set(), "integration": set(), "unit": set()}
    first_on: dict[str, str] = {}
    for module, worker in ran:
        workers[module.split("_")[1]].add(worker)
        first_on.setdefault(worker, module.removeprefix("test_"))
    assert len(workers["container"]) == 1, workers
    assert sorted(first_on.values()) == ["container_0", "integration_3"], first_on  # the two longest units
    # which worker takes which of the other tests depends on timing; both take some
    assert workers["container"] | workers["integration"] == {"gw0", "gw1"}, workers
    assert sorted(path.name for path in (tmp_path / "tmp").iterdir()) == []  # each worker's temp folder went


def test_a_file_is_one_unit_of_work_and_the_container_tests_are_one() -> None:
    """The scheduler's units of work: all container tests in one, every other test with its file."""
    from tests.schedule import pytest_xdist_make_scheduler

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


def test_the_longest_units_go_out_first() -> None:
    record = {
        "tests/container/": {"seconds": 300, "tests": 2},
        "tests/dags/test_dags.py": {"seconds": 5, "tests": 1},
        "tests/integration/test_one.py": {"seconds": 400, "tests": 1},
        "tests/integration/test_two.py": {"seconds": 100, "tests": 2},
        "tests/unit/test_many.py": {"seconds": 3, "tests": 3},
    }
    sizes = {"tests/container/": 2, "tests/dags/test_dags.py": 1, "tests/integration/test_one.py": 1}
    sizes |= {"tests/integration/test_two.py": 2, "tests/unit/test_many.py": 3, "tests/unit/test_few.py": 1}
    assert longest_first(sizes, record) == [
        "tests/integration/test_one.py",  # 400 s, though it has one test
        "tests/container/",
        "tests/integration/test_two.py",
        "tests/dags/test_dags.py",
        "tests/unit/test_many.py",  # the most tests, 3 s
        "tests/unit/test_few.py",  # unknown: 1 s a test, as its suite's record
    ]


def test_a_unit_the_record_lacks_is_estimated_from_its_suite_and_a_changed_one_is_scaled() -> None:
    record = {
        "tests/integration/test_one.py": {"seconds": 30, "tests": 1},
        "tests/integration/test_three.py": {"seconds": 50, "tests": 1},
        "tests/unit/test_many.py": {"seconds": 6, "tests": 6},  # 1 s a test, now 3 tests
    }
    sizes = {"tests/integration/test_two.py": 2, "tests/unit/test_many.py": 3, "tests/dags/test_dags.py": 1}
    expected = expected_seconds(sizes, record)
    # the median integration test takes 40 s; no dags file is known: the median of all, 30 s
    assert expected == {
        "tests/integration/test_two.py": 80.0,
        "tests/unit/test_many.py": 3.0,
        "tests/dags/test_dags.py": 30.0,
    }
    assert expected_seconds({"tests/unit/t.py": 4}, {}) == {"tests/unit/t.py": 4.0}  # no record: by tests


def test_the_record_is_written_from_a_runs_log_and_read_back(tmp_path: Path) -> None:
    from tools.bench.test_suite import write_durations

    log = [
        {"test": "tests/container/test_a.py::t1", "wall": 10.0, "load": 1.0},
        {"test": "tests/container/test_b.py::t2", "wall": 5.5, "load": 2.0},
        {"test": "tests/unit/test_c.py::t3[x]", "wall": 0.3, "load": 3.0},
    ]
    path = tmp_path / "durations.json"
    write_durations(log, path)
    assert load_durations(path) == {
        "tests/container/": {"seconds": 15.5, "tests": 2},
        "tests/unit/test_c.py": {"seconds": 0.3, "tests": 1},
    }
    path.write_text("{not json")
    assert load_durations(path) == {}  # a broken record costs the order only
    assert load_durations(tmp_path / "missing.json") == {}


def test_the_shipped_record_is_read() -> None:
    """A file the record lacks is estimated from its suite (above), so a team's new test file needs
    no refresh; but a record that no longer parses would silently lose the order."""
    known = load_durations()
    assert "tests/container/" in known, "tests/durations.json: python -m tools.bench.test_suite --write-durations"
    assert all(unit["seconds"] >= 0 and unit["tests"] > 0 for unit in known.values())


def test_the_shards_split_the_units_by_their_seconds_and_each_unit_is_in_one() -> None:
    sizes = {scope: unit["tests"] for scope, unit in RECORD.items()} | {"tests/unit/test_new.py": 2}
    assert split_into_shards(sizes, RECORD, 2) == [
        ["tests/container/"],  # 400 s
        [  # 200 + 10 + 3 + 1 (a unit file the record lacks, 2 tests at its suite's 0.5 s) = 214 s
            "tests/integration/test_integration_3.py",
            "tests/integration/test_integration_0.py",
            "tests/unit/test_unit_0.py",
            "tests/unit/test_new.py",
        ],
    ]
    for count in (1, 3, 7):
        shards = split_into_shards(sizes, RECORD, count)
        assert sorted(scope for shard in shards for scope in shard) == sorted(sizes)
    assert parse_shard("2/3") == (2, 3)
    for wrong in ("0/2", "3/2", "1", "a/b", "1/2/3"):
        with pytest.raises(pytest.UsageError, match="expected K/N"):
            parse_shard(wrong)


def test_two_shards_run_every_test_once_between_them(tmp_path: Path) -> None:
    # as CI runs a shard, on two workers: each collects and deselects on its own, and pytest-xdist
    # stops the run if their collections differ
    first = [module for module, _ in inner_session(tmp_path, "-n", "2", "--shard", "1/2")]
    second = [module for module, _ in inner_session(tmp_path, "--shard", "2/2")]
    # 400 s of container tests, then the 10 s and 3 s files: 413 s; 200 + 105 + 105 s in the other
    # (two integration files the record lacks: their suite's median, 105 s a test)
    assert set(first) == {f"test_container_{index}" for index in range(4)} | {"test_integration_0", "test_unit_0"}
    assert not set(first) & set(second)
    assert len(first) + len(second) == 4 + 4 + 6  # every test, once
