"""Where the suite's time and CPU go: with TEST_CPU_LOG=<file>, each test appends one JSON
line with its wall seconds and the machine's busy CPU seconds over the same span (from /proc/stat,
so processes a test started outside its own tree count too). `python -m tools.bench.test_suite`
sums the lines per suite and file. On a shared machine the CPU column includes other work."""

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
    start_wall, start_cpu = time.monotonic(), busy_cpu_seconds()
    yield
    end_cpu = busy_cpu_seconds()
    record = {
        "test": item.nodeid,
        "wall": round(time.monotonic() - start_wall, 3),
        "cpu": None if start_cpu is None or end_cpu is None else round(end_cpu - start_cpu, 3),
        "load": round(os.getloadavg()[0], 2),
    }
    with open(target, "a") as log:
        log.write(json.dumps(record) + "\n")
