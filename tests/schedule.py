"""The order in which `make test`'s pytest-xdist workers take the test files.

A unit of work is a test file, whole, so that a module's fixtures (an Airflow stack, Celery,
Azurite) start once, and the container tests are one unit: they share image tags, a wheelhouse and
the Docker engine. Units go out longest first, each to the worker about to run out of work (the
classic longest-processing-time rule; pytest-xdist gives a worker its next unit when two or fewer
of its tests are left, because a worker must know its next test before it runs its last). How long
a unit takes comes from tests/durations.json, the seconds each unit took in a recent `make test`
(refresh it with `python -m tools.bench.test_suite --write-durations`). A file whose number of
tests changed is scaled by its own seconds per test, and a file the record does not know is
estimated from its suite's: a stale record changes the order, never which tests run.

`--shard K/N` runs the K-th of N shards: the units split by the same record into N sets of about
equal seconds, for CI jobs on separate machines. Every unit is in exactly one shard, whatever the
record says.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
DURATIONS_VARIABLE = "TEST_DURATIONS"  # another record, for a session started by a test
CONTAINER_TESTS = "tests/container/"
SECONDS_PER_UNKNOWN_TEST = 1.0  # when the record knows no unit at all


def scope_of(nodeid: str) -> str:
    """A test's unit of work: its file, or the whole container suite."""
    return CONTAINER_TESTS if nodeid.startswith(CONTAINER_TESTS) else nodeid.split("::", 1)[0]


def suite_of(scope: str) -> str:
    """tests/integration/test_x.py -> tests/integration/"""
    return scope.rsplit("/", 1)[0] + "/" if "/" in scope.rstrip("/") else scope


def load_durations(path: Path | None = None) -> dict[str, dict[str, float]]:
    """{scope: {"seconds": s, "tests": n}}; empty when the file is missing or unreadable, which
    only costs the run its order."""
    path = path or Path(os.environ.get(DURATIONS_VARIABLE) or DURATIONS)
    try:
        units = json.loads(path.read_text())["units"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {
        scope: {"seconds": float(unit["seconds"]), "tests": int(unit["tests"])}
        for scope, unit in units.items()
        if isinstance(unit, dict) and unit.get("tests")
    }


def durations_from_log(records: list[dict]) -> dict[str, dict[str, float]]:
    """Per unit of work, the wall seconds and number of tests of a cpu.jsonl log (tests/cpu_log.py)."""
    seconds: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for record in records:
        seconds[scope_of(record["test"])] += record["wall"]
        tests[scope_of(record["test"])] += 1
    return {scope: {"seconds": round(seconds[scope], 1), "tests": tests[scope]} for scope in sorted(tests)}


def expected_seconds(tests_per_scope: Mapping[str, int], known: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each scope's expected seconds: its recorded seconds per test times its tests now, or, for a
    scope the record lacks, the median seconds per test of its suite's recorded scopes."""
    per_test = {scope: unit["seconds"] / unit["tests"] for scope, unit in known.items()}
    by_suite: dict[str, list[float]] = {}
    for scope, seconds in per_test.items():
        by_suite.setdefault(suite_of(scope), []).append(seconds)
    overall = statistics.median(per_test.values()) if per_test else SECONDS_PER_UNKNOWN_TEST
    expected = {}
    for scope, tests in tests_per_scope.items():
        suite = by_suite.get(suite_of(scope))
        rate = per_test.get(scope, statistics.median(suite) if suite else overall)
        expected[scope] = rate * tests
    return expected


def longest_first(tests_per_scope: Mapping[str, int], known: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The units of work by expected seconds, longest first; ties keep their given order."""
    return _longest_first(expected_seconds(tests_per_scope, known))


def _longest_first(expected: Mapping[str, float]) -> list[str]:
    return sorted(expected, key=lambda scope: -expected[scope])  # stable: ties keep their order


def split_into_shards(
    tests_per_scope: Mapping[str, int], known: Mapping[str, Mapping[str, float]], count: int
) -> list[list[str]]:
    """The units in `count` shards of about equal expected seconds: each unit, longest first, to
    the shard with the fewest seconds so far."""
    expected = expected_seconds(tests_per_scope, known)
    shards: list[list[str]] = [[] for _ in range(count)]
    seconds = [0.0] * count
    for scope in _longest_first(expected):
        lightest = seconds.index(min(seconds))
        shards[lightest].append(scope)
        seconds[lightest] += expected[scope]
    return shards


def parse_shard(value: str) -> tuple[int, int]:
    """ "2/3" -> (2, 3)."""
    try:
        number, count = (int(part) for part in value.split("/"))
    except ValueError:
        number = count = 0
    if not 1 <= number <= count:
        raise pytest.UsageError(f"--shard {value}: expected K/N with 1 <= K <= N, such as --shard 1/2")
    return number, count


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard", metavar="K/N", help="run the K-th of N shards of the test files (by tests/durations.json)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--shard"):
        return
    number, count = parse_shard(config.getoption("--shard"))
    sizes = Counter(scope_of(item.nodeid) for item in items)
    keep = set(split_into_shards(sizes, load_durations(), count)[number - 1])
    deselected = [item for item in items if scope_of(item.nodeid) not in keep]
    items[:] = [item for item in items if scope_of(item.nodeid) in keep]
    config.hook.pytest_deselected(items=deselected)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called under `pytest -n N` only
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """An explicit `--dist` other than `load` keeps pytest-xdist's own scheduler. (Its `--dist
    loadgroup` cannot keep a file whole on pytest 9.2, where it no longer renames the grouped
    tests.)"""
    if config.getvalue("dist") not in (None, "load"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestFileFirst(LoadScopeScheduling):
        """pytest-xdist's scheduler by scope, with its queue of units ordered once, before the first
        unit goes out. (The queue, not the collections: a test's index in its worker's collection
        is how the worker is told to run it.)"""

        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            if not self.ordered:
                left = {scope: sum(not done for done in tests.values()) for scope, tests in self.workqueue.items()}
                for scope in longest_first(left, load_durations()):
                    self.workqueue.move_to_end(scope)
                self.ordered = True
            super()._assign_work_unit(node)

        def remove_node(self, node: object) -> object:
            self.ordered = False  # a crashed worker's units return to the queue: order it again
            return super().remove_node(node)

    return LongestFileFirst(config, log)
