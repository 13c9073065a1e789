"""ci/ensure-docker.sh starts dockerd with the machine's environment, not its caller's: the tests
call it from a pytest-xdist worker whose TMPDIR is removed when the worker ends, and an engine that
kept it failed every later `docker exec` (health checks included) until it was restarted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.skipif(os.getuid() != 0, reason="the script starts dockerd only as root")
@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="with systemd the script uses systemctl")
def test_dockerd_gets_the_machines_environment_not_the_callers(tmp_path: Path) -> None:
    started, seen = tmp_path / "started", tmp_path / "dockerd.env"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `docker info` answers once the stand-in dockerd has run; dockerd records what it was given.
    (bin_dir / "docker").write_text(f'#!/bin/sh\n[ "$1" = info ] && [ -f {started} ]\n')
    (bin_dir / "dockerd").write_text(f"#!/bin/sh\nenv > {seen}\ntouch {started}\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "a-worker-folder"),
        "PYTEST_XDIST_WORKER": "gw1",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "DOCKERD_LOG": str(tmp_path / "dockerd.log"),
    }
    result = subprocess.run(
        ["bash", "ci/ensure-docker.sh", "--engine-only"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    given = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert given["PATH"] == env["PATH"]
    assert given["HTTPS_PROXY"] == env["HTTPS_PROXY"]  # registry pulls still go through the proxy
    assert "TMPDIR" not in given
    assert "PYTEST_XDIST_WORKER" not in given
    assert "DOCKERD_LOG" not in given
