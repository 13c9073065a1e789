"""Stopping a service together with everything it started: the service leads its own process
group (`start_new_session=True`); the whole group is asked to stop, given time to, and what is
left of it then is killed.

A leader can exit while a child of its hangs in its own shutdown: `airflow standalone` left its
scheduler waiting forever on LocalExecutor workers stuck on a queue lock (seen in a CI run).
Nothing of the group may outlive the stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PROC = Path("/proc")


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to every process of the group; nothing when no member is left to signal."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_is_running(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not count: it has exited and only
    waits for a parent (here often one that never reaps) to collect its status."""
    if not PROC.is_dir():  # not Linux: any member at all, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _parent, group = text[text.rindex(")") + 2 :].split()[:3]  # the name may hold spaces
        if int(group) == pgid and state != "Z":
            return True
    return False


def still_ours(leader: subprocess.Popen) -> bool:
    """Whether the group named by the leader's pid is still the one it led. Linux reuses no pid
    while a group of that id has a member, so once the leader is reaped, a live process with its
    pid means the group was left empty and the number went to another process, whose group must
    not be signalled."""
    return leader.returncode is None or not PROC.is_dir() or not (PROC / str(leader.pid)).exists()


def wait_then_kill_group(leader: subprocess.Popen, timeout: float) -> bool:
    """Give a group already asked to stop up to `timeout` s to exit, leader and members alike,
    then SIGKILL whatever of it is still running; whether anything had to be killed."""
    deadline = time.monotonic() + max(0.1, timeout)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.wait(timeout=max(0.1, deadline - time.monotonic()))
    while still_ours(leader) and group_is_running(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = still_ours(leader) and group_is_running(leader.pid)
    if killed:
        signal_group(leader.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a leader stuck in the kernel: the next group still goes
        leader.wait(timeout=10)
    return killed


def stop_group(leader: subprocess.Popen, timeout: float, signum: int = signal.SIGTERM) -> bool:
    """Send `signum` to the group (its leader may have exited already), then wait_then_kill_group."""
    return stop_groups([leader], timeout, signum)


def stop_groups(leaders: Sequence[subprocess.Popen], timeout: float, signum: int = signal.SIGTERM) -> bool:
    """Stop several groups at once: every group is signalled first, whether or not its leader is
    still running (a leader that exited may have left members behind), then all share one
    deadline; whether anything had to be killed."""
    for leader in leaders:
        if still_ours(leader):
            signal_group(leader.pid, signum)
    deadline = time.monotonic() + timeout
    killed = [wait_then_kill_group(leader, deadline - time.monotonic()) for leader in leaders]
    return any(killed)
