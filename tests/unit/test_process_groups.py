"""tools/process_groups.py: a stopped service takes its whole process group with it, even a child
that ignores SIGTERM while the leader exits (as `airflow standalone`'s scheduler once hung)."""

from __future__ import annotations

import os
import subprocess
import time

from tools.process_groups import stop_group

# The leader exits on SIGTERM; its child ignores SIGTERM and would sleep on, orphaned.
SCRIPT = "(trap '' TERM; exec sleep 300) & echo $!; wait"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has stopped, it only waits to be reaped
    except FileNotFoundError:
        return False


def _started_group() -> tuple[subprocess.Popen, int]:
    leader = subprocess.Popen(["bash", "-c", SCRIPT], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(leader.stdout.readline())
    leader.stdout.close()
    assert _alive(child)
    assert os.getpgid(child) == leader.pid
    return leader, child


def test_a_child_that_ignores_sigterm_does_not_outlive_its_stopped_leader() -> None:
    leader, child = _started_group()
    started = time.monotonic()
    stop_group(leader, timeout=10)
    assert leader.returncode is not None
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the SIGTERM-proof child outlived the stop"
    assert time.monotonic() - started < 10  # the leader went on SIGTERM: no wait for the timeout


def test_a_leader_that_ignores_sigterm_is_killed_at_the_timeout() -> None:
    leader = subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 300 & wait"], start_new_session=True)
    time.sleep(0.3)  # the trap is set
    started = time.monotonic()
    stop_group(leader, timeout=1)
    assert leader.returncode == -9
    assert 1 <= time.monotonic() - started < 10
