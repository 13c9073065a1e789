"""tools/process_groups.py and `make ui`: a stopped service takes its whole process group with it, even a child
that ignores SIGTERM while the leader exits (as `airflow standalone`'s scheduler once hung)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT
from tools.process_groups import stop_group

# The leader exits on SIGTERM; its child ignores SIGTERM and would sleep on, orphaned.
SCRIPT = "(trap '' TERM; exec sleep 300) & echo $!; wait"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has stopped, it only waits to be reaped
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    """A SIGKILLed process may run on for a moment before it is gone."""
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


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
    assert _gone_within(child, 5), "the SIGTERM-proof child outlived the stop"
    assert time.monotonic() - started < 10  # the leader went on SIGTERM: no wait for the timeout


def test_a_leader_that_ignores_sigterm_is_killed_at_the_timeout() -> None:
    leader = subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 300 & wait"], start_new_session=True)
    time.sleep(0.3)  # the trap is set
    started = time.monotonic()
    stop_group(leader, timeout=1)
    assert leader.returncode == -9
    assert 1 <= time.monotonic() - started < 10


def test_make_ui_stopped_by_sigterm_leaves_nothing_of_standalone(tmp_path) -> None:
    """tools/ui.run_standalone with a stand-in for `airflow standalone` whose child ignores SIGTERM."""
    child_pid = tmp_path / "child.pid"
    stand_in = ["bash", "-c", f"(trap '' TERM; exec sleep 300) & echo $! > {child_pid}; wait"]
    program = f"import sys; from tools.ui import run_standalone; sys.exit(run_standalone({{}}, {stand_in!r}))"
    ui = subprocess.Popen([sys.executable, "-c", program], cwd=REPO_ROOT)
    deadline = time.monotonic() + 30
    while not child_pid.exists() or not child_pid.read_text().strip():
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    child = int(child_pid.read_text())
    ui.send_signal(signal.SIGTERM)
    assert ui.wait(timeout=30) == 128 + signal.SIGTERM
    assert _gone_within(child, 5), "standalone's SIGTERM-proof child outlived `make ui`"
