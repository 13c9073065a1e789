"""Where the suite's time and CPU go: with TEST_CPU_LOG=<file> (relative to the rootdir), each test
appends one JSON line with its wall seconds and the machine's busy CPU seconds over the same span
(from /proc/stat, so processes a test started outside its own tree count too).
`python -m tools.bench.test_suite` sums the lines per suite and file. The CPU is the machine's: it
includes other work on a shared machine, and under `pytest -n N` the other workers' tests running at
the same time."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LOG_VARIABLE = "TEST_CPU_LOG"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_cpu_seconds(stat: Path = Path("/proc/stat")) -> float | None:
    """Machine-wide CPU seconds spent on anything but idle and I/O wait, since boot."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    target = os.environ.get(LOG_VARIABLE)
    if not target:
        yield
        return
    start, start_cpu = time.time(), busy_cpu_seconds()
    yield
    end, end_cpu = time.time(), busy_cpu_seconds()
    record = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
        "wall": round(end - start, 3),
        "cpu": None if start_cpu is None or end_cpu is None else round(end_cpu - start_cpu, 3),
        "span": [round(start, 3), round(end, 3)],
        "cpu_span": None if start_cpu is None or end_cpu is None else [start_cpu, end_cpu],
        "load": round(os.getloadavg()[0], 2),
    }
    # relative to the session's rootdir: a session started by a test (in a fork, in a temp folder)
    # keeps its lines to itself
    path = item.config.rootpath / target
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.write(json.dumps(record) + "\n")
