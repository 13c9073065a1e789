"""tools/process_groups.py and `make ui`: a stopped service leaves nothing of its process group,
even a child that ignores SIGTERM after its leader exits (as `airflow standalone`'s scheduler once
hung), and a child that shuts down cleanly is given the time to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tools.process_groups import stop_group, stop_groups

# Each child prints its pid once its traps are set, so no signal can reach it before they are.
SIGTERM_PROOF_CHILD = "(trap '' TERM INT; echo $BASHPID; exec sleep 300) & wait"
GRACEFUL_CHILD = "(trap 'sleep 1; touch {done}; exit' TERM; echo $BASHPID; sleep 300 & wait) & wait"
ORPHANED_GRACEFUL_CHILD = "(trap 'sleep 1; touch {done}; exit' TERM; echo $BASHPID; sleep 300 & wait) &"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie has exited, it only waits to be reaped
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    """A SIGKILLed process may run on for a moment before it is gone."""
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.fixture
def children() -> Iterator[list[int]]:
    """The pids a test's groups print; any still running at the end are killed, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _started_group(script: str, children: list[int]) -> subprocess.Popen:
    leader = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    children.append(int(leader.stdout.readline()))
    leader.stdout.close()
    assert os.getpgid(children[-1]) == leader.pid
    return leader


def test_a_child_that_ignores_sigterm_does_not_outlive_its_stopped_leader(children: list[int]) -> None:
    leader = _started_group(SIGTERM_PROOF_CHILD, children)
    started = time.monotonic()
    stop_group(leader, timeout=2)
    assert leader.returncode == -signal.SIGTERM  # the leader itself went at once
    assert _gone_within(children[0], 5), "the SIGTERM-proof child outlived the stop"
    assert 2 <= time.monotonic() - started < 15  # killed once its time was up


def test_a_child_that_stops_cleanly_gets_the_time_to(children: list[int], tmp_path: Path) -> None:
    done = tmp_path / "done"
    leader = _started_group(GRACEFUL_CHILD.format(done=done), children)
    stop_group(leader, timeout=20)
    assert done.exists(), "the child was killed before its clean shutdown ended"
    assert _gone_within(children[0], 5)


def test_a_group_whose_leader_has_exited_is_still_asked_to_stop(children: list[int], tmp_path: Path) -> None:
    """LocalAirflow.stop's case: of several services, one has exited and left a child running;
    that child gets SIGTERM with the others, not a kill once their shared time is up."""
    done = tmp_path / "done"
    exited = _started_group(ORPHANED_GRACEFUL_CHILD.format(done=done), children)
    assert exited.wait(timeout=10) == 0  # the leader is gone, its child runs on in its group
    running = _started_group("echo $$; exec sleep 300", children)
    killed = stop_groups([exited, running], timeout=5)
    assert not killed, "a member of the exited leader's group was killed instead of stopped"
    assert done.exists(), "the exited leader's child never got its SIGTERM"
    assert running.returncode == -signal.SIGTERM
    assert _gone_within(children[0], 5)


def test_a_stack_stop_asks_an_exited_services_children_to_stop_too(children: list[int], tmp_path: Path) -> None:
    """LocalAirflow.stop itself, on a service that exited and left a child behind, and one running."""
    from tools.airflow_services import LocalAirflow
    from tools.postgres import ConnectionSettings

    done = tmp_path / "done"
    airflow = LocalAirflow(tmp_path / "home", {}, ConnectionSettings("127.0.0.1", 5432, "u", "p", "airflow"))
    exited = _started_group(ORPHANED_GRACEFUL_CHILD.format(done=done), children)
    assert exited.wait(timeout=10) == 0
    airflow._processes = [exited, _started_group("echo $$; exec sleep 300", children)]
    airflow.stop()
    assert done.exists(), "the exited service's child was killed at the end instead of asked to stop"
    assert _gone_within(children[0], 5)
    assert _gone_within(children[1], 5)


def test_a_group_whose_number_went_to_another_process_is_left_alone(children: list[int]) -> None:
    """Once a leader is reaped and its group empty, Linux may give its pid to a new process; that
    process's own group is not the stopped service's."""
    reaped = subprocess.Popen(["true"], start_new_session=True)
    reaped.wait(timeout=10)
    other = _started_group("echo $$; exec sleep 300", children)
    reaped.pid = other.pid  # as if the number had been reused for another service's leader
    assert not stop_groups([reaped], timeout=1)
    with pytest.raises(subprocess.TimeoutExpired):  # time for a stray signal to land
        other.wait(timeout=1)
    assert not stop_group(other, timeout=5)


def test_a_leader_that_ignores_sigterm_is_killed_at_the_timeout(children: list[int]) -> None:
    leader = _started_group("trap '' TERM; echo $$; sleep 300 & wait", children)
    started = time.monotonic()
    stop_group(leader, timeout=1)
    assert leader.returncode == -signal.SIGKILL
    assert 1 <= time.monotonic() - started < 15


def test_make_ui_stopped_by_sigterm_leaves_nothing_of_standalone(children: list[int], tmp_path: Path) -> None:
    """tools/ui.run_standalone with a stand-in for `airflow standalone` whose child ignores SIGINT
    and SIGTERM; `make ui`'s own process is what the user's Ctrl-C or a SIGTERM reaches."""
    child_pid = tmp_path / "child.pid"
    stand_in = ["bash", "-c", f"(trap '' TERM INT; echo $BASHPID > {child_pid}.tmp; mv {child_pid}.tmp {child_pid}; "
                "exec sleep 300) & wait"]  # fmt: skip
    program = (
        "import sys; from tools.ui import run_standalone; "
        f"sys.exit(run_standalone(dict(__import__('os').environ), {stand_in!r}, stop_seconds=2))"
    )
    ui = subprocess.Popen([sys.executable, "-c", program], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not child_pid.exists():
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    children.append(int(child_pid.read_text()))
    ui.send_signal(signal.SIGTERM)
    assert ui.wait(timeout=30) == 128 + signal.SIGTERM
    assert "ui: stopping airflow standalone (up to 2 s)" in ui.stderr.read()
    assert _gone_within(children[0], 5), "standalone's SIGTERM-proof child outlived `make ui`"
