"""Stopping a service together with everything it started: the service leads its own process
group (`start_new_session=True`), and what is left of the group once the leader is gone is killed.

A leader can exit on SIGTERM while a child of its hangs in its own shutdown: `airflow standalone`
left its scheduler waiting forever on LocalExecutor workers stuck on a queue lock (seen in a CI
run). Nothing of the group may outlive the stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signum)


def reap_group(leader: subprocess.Popen, timeout: float) -> None:
    """Wait up to `timeout` s for a leader already asked to stop, SIGKILL its group if it has not
    exited by then, and SIGKILL whatever of the group is still running once it has."""
    try:
        leader.wait(timeout=max(0.1, timeout))
    except subprocess.TimeoutExpired:
        signal_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
    signal_group(leader.pid, signal.SIGKILL)


def stop_group(leader: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the group, then reap_group."""
    if leader.poll() is None:
        signal_group(leader.pid, signal.SIGTERM)
    reap_group(leader, timeout)
